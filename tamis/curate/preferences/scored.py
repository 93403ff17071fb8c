"""Per-response ratings (UltraFeedback style) and rankings -> preference pairs.

Ratings: rows (prompt, response, score[, annotator]). Several ratings of the same response are
aggregated (`mean`, `median`, or `majority` = the most frequent score, the mean of the tied modes on
a tie). Pairs per prompt by `strategy`:

- `best_worst`: the best-scored response against the worst one (one pair per prompt);
- `best_random`: the best against a random lower-scored one (seeded);
- `all_pairs`: every pair of responses whose scores differ.

A pair needs `score_gap >= margin` (`below_margin` otherwise). Equal scores are ties: dropped
(`ties: drop`) or kept with `tie = true` and a random order (`ties: keep`; `to_sft` leaves them out).
With an `annotator` column each pair also gets `agreement`: the share of annotators who rated both
responses and ordered them the same way as the aggregate (equal scores count one half).

Rankings: rows (prompt, responses) with the list ordered best first, or long rows (prompt, response,
rank) with rank 1 the best. Ranks become scores (score = -rank) and the same strategies apply;
several rankings of a prompt are aggregated by mean rank. `chosen_rank`/`rejected_rank` are kept.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl

from tamis.curate.preferences.common import (
    Drops,
    PairResult,
    check_format,
    finalize,
    nothing_left,
    require_columns,
    user_messages,
)
from tamis.curate.preferences.stats import build_report
from tamis.errors import StepError

STRATEGIES = ("best_worst", "best_random", "all_pairs")
AGGREGATES = ("mean", "median", "majority")


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise StepError(
            f"unknown {name} '{value}'", field=name, fix=f"use one of {', '.join(valid)}"
        )


def parse_scores(
    df: pl.DataFrame, score_col: str, drops: Drops, *, negate: bool = False, what: str = "score"
) -> pl.DataFrame:
    """Keep rows with a usable `score` (Float64); count missing and non-numeric ones as drops."""
    raw = df.get_column(score_col)
    if raw.dtype == pl.String:
        parsed = raw.str.strip_chars().cast(pl.Float64, strict=False)
    elif raw.dtype.is_numeric() or raw.dtype == pl.Boolean:
        parsed = raw.cast(pl.Float64)
    else:
        parsed = raw.cast(pl.String, strict=False).cast(pl.Float64, strict=False)
    finite = pl.when(pl.col("score").is_finite()).then(pl.col("score"))  # NaN and inf -> null
    df = df.with_columns(parsed.alias("score"), raw.alias("__raw")).with_columns(finite)
    drops.add_frame(df.filter(pl.col("__raw").is_null()).drop("score", "__raw"), f"missing_{what}")
    drops.add_frame(
        df.filter(pl.col("__raw").is_not_null() & pl.col("score").is_null())
        .drop("score")
        .rename({"__raw": "score"})
        .with_columns(pl.col("score").cast(pl.String)),
        f"non_numeric_{what}",
    )
    out = df.filter(pl.col("score").is_not_null()).drop("__raw")
    return out.with_columns(-pl.col("score")) if negate else out


def _aggregate(rows: pl.DataFrame, how: str) -> pl.DataFrame:
    score = pl.col("score")
    agg = {"mean": score.mean(), "median": score.median(), "majority": score.mode().mean()}[how]
    return rows.group_by("prompt", "response", maintain_order=True).agg(
        agg.alias("score"), pl.len().alias("n_ratings")
    )


def _pairs_for_prompt(
    prompt: str,
    responses: list[str],
    scores: list[float],
    *,
    strategy: str,
    margin: float,
    ties: str,
    rng: random.Random,
    drops: Drops,
) -> list[dict[str, Any]]:
    if len(responses) < 2:
        drops.add("single_response", "prompt", prompt=prompt)
        return []
    order = sorted(range(len(responses)), key=lambda i: (-scores[i], rng.random()))
    if strategy == "best_worst":
        cands = [(order[0], order[-1])]
    elif strategy == "best_random":
        best = order[0]
        lower = [
            i for i in order[1:] if scores[best] - scores[i] >= margin and scores[i] < scores[best]
        ]
        cands = [(best, rng.choice(lower) if lower else rng.choice(order[1:]))]
    else:
        cands = [(order[a], order[b]) for a in range(len(order)) for b in range(a + 1, len(order))]
    out = []
    for i, j in cands:
        gap = scores[i] - scores[j]
        detail = {"chosen": responses[i], "rejected": responses[j], "score_gap": gap}
        tie = gap == 0
        if tie and ties == "drop":
            drops.add("tie", "pair", prompt=prompt, detail=detail)
            continue
        if not tie and gap < margin:
            drops.add("below_margin", "pair", prompt=prompt, detail=detail)
            continue
        if tie and rng.random() < 0.5:
            i, j = j, i
        out.append(
            {
                "prompt": prompt,
                "chosen": responses[i],
                "rejected": responses[j],
                "chosen_score": scores[i],
                "rejected_score": scores[j],
                "score_gap": scores[i] - scores[j],
                "tie": tie,
            }
        )
    return out


def _agreement(pairs: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """Per pair: the share of annotators who rated both responses and agree with the order."""
    ratings = rows.group_by("prompt", "response", "annotator").agg(pl.col("score").mean())
    idx = pairs.select("prompt", "chosen", "rejected").with_row_index("__pair")
    both = idx.join(
        ratings.rename({"response": "chosen", "score": "sc"}), on=["prompt", "chosen"]
    ).join(
        ratings.rename({"response": "rejected", "score": "sr"}),
        on=["prompt", "rejected", "annotator"],
    )
    per_pair = both.group_by("__pair").agg(
        (
            (pl.col("sc") > pl.col("sr")).cast(pl.Float64)
            + 0.5 * (pl.col("sc") == pl.col("sr")).cast(pl.Float64)
        )
        .mean()
        .alias("agreement"),
        pl.len().alias("n_annotators"),
    )
    out = idx.join(per_pair, on="__pair", how="left").sort("__pair")
    return pairs.with_columns(out.get_column("agreement"), out.get_column("n_annotators"))


def pairs_from_scored(
    rows: pl.DataFrame,
    drops: Drops,
    *,
    kind: str,
    rows_in: int,
    strategy: str,
    margin: float,
    ties: str,
    aggregate: str,
    format: str,
    keep_both: bool,
    seed: int,
) -> PairResult:
    """`rows` has prompt, response, score (higher is better) and maybe annotator."""
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("ties", ties, ("drop", "keep"))
    _check_choice("aggregate", aggregate, AGGREGATES)
    if margin < 0:
        raise StepError(f"margin must be >= 0, got {margin}", field="margin", fix="e.g. margin: 1")
    agg = _aggregate(rows, aggregate)
    rng = random.Random(seed)
    pair_rows: list[dict[str, Any]] = []
    n_candidates = 0
    grouped = agg.group_by("prompt", maintain_order=True).agg("response", "score")
    for prompt, responses, scores in grouped.iter_rows():
        before = len(drops.records)
        got = _pairs_for_prompt(
            prompt,
            responses,
            scores,
            strategy=strategy,
            margin=margin,
            ties=ties,
            rng=rng,
            drops=drops,
        )
        pair_rows += got
        n_candidates += len(got) + sum(r["unit"] == "pair" for r in drops.records[before:])
    schema = {
        "prompt": pl.String,
        "chosen": pl.String,
        "rejected": pl.String,
        "chosen_score": pl.Float64,
        "rejected_score": pl.Float64,
        "score_gap": pl.Float64,
        "tie": pl.Boolean,
    }
    pairs = pl.DataFrame(pair_rows, schema=schema)
    extra: dict[str, Any] = {
        "strategy": strategy,
        "margin": margin,
        "aggregate": aggregate,
        "responses": agg.height,
        "ratings_per_response": float(agg.get_column("n_ratings").mean() or 0.0),  # type: ignore[arg-type]
    }
    if "annotator" in rows.columns and pairs.height:
        pairs = _agreement(pairs, rows)
        ag = pairs.get_column("agreement").drop_nulls()
        extra["agreement"] = {
            "mean": float(ag.mean()) if ag.len() else None,  # type: ignore[arg-type]
            "pairs_with_shared_annotators": int(ag.len()),
            "annotators": int(rows.get_column("annotator").n_unique()),
        }
    if kind == "rankings":
        pairs = pairs.with_columns(
            (-pl.col("chosen_score")).alias("chosen_rank"),
            (-pl.col("rejected_score")).alias("rejected_rank"),
        ).drop("chosen_score", "rejected_score")
    canon = pairs.with_columns(
        user_messages(pl.col("prompt")).alias("prompt_messages"),
        pl.lit(1, dtype=pl.Int64).alias("n_turns"),
    )
    report = build_report(kind, rows_in, canon, drops, pairs_in=n_candidates, extra=extra)
    if canon.height == 0:
        raise nothing_left(kind, report)
    return PairResult(finalize(canon, format, keep_both), report, drops.frame())


def _base_rows(df: pl.DataFrame, cols: dict[str, str | None], drops: Drops) -> pl.DataFrame:
    """Select and rename the text columns, numbering rows; rows with a null text are dropped."""
    present = {k: v for k, v in cols.items() if v is not None}
    rows = df.with_row_index("__row").select(
        pl.col("__row").cast(pl.Int64),
        *[pl.col(src).alias(dst) for dst, src in present.items() if dst in ("score", "rank")],
        *[
            pl.col(src).cast(pl.String).alias(dst)
            for dst, src in present.items()
            if dst not in ("score", "rank")
        ],
    )
    text = [c for c in present if c not in ("score", "rank")]
    bad = pl.any_horizontal(*[pl.col(c).is_null() for c in text])
    drops.add_frame(rows.filter(bad), "missing_value")
    return rows.filter(~bad)


def pairs_from_ratings(
    df: pl.DataFrame,
    *,
    prompt_col: str = "prompt",
    response_col: str = "response",
    score_col: str = "score",
    annotator_col: str | None = None,
    strategy: str = "best_worst",
    margin: float = 0.0,
    ties: str = "drop",
    aggregate: str = "mean",
    format: str = "standard",
    keep_both: bool = True,
    seed: int = 0,
) -> PairResult:
    """Per-response ratings -> pairs (see the module docstring)."""
    check_format(format)
    need = {"prompt_col": prompt_col, "response_col": response_col, "score_col": score_col}
    if annotator_col:
        need["annotator_col"] = annotator_col
    require_columns(df, need, "ratings")
    drops = Drops()
    cols = {
        "prompt": prompt_col,
        "response": response_col,
        "score": score_col,
        "annotator": annotator_col,
    }
    rows = parse_scores(_base_rows(df, cols, drops), "score", drops)
    return pairs_from_scored(
        rows, drops, kind="ratings", rows_in=df.height, strategy=strategy, margin=margin,
        ties=ties, aggregate=aggregate, format=format, keep_both=keep_both, seed=seed,
    )  # fmt: skip


def pairs_from_rankings(
    df: pl.DataFrame,
    *,
    prompt_col: str = "prompt",
    responses_col: str = "responses",
    response_col: str = "response",
    rank_col: str | None = None,
    strategy: str = "best_worst",
    margin: float = 0.0,
    ties: str = "drop",
    format: str = "standard",
    keep_both: bool = True,
    seed: int = 0,
) -> PairResult:
    """Rankings -> pairs: a list column ordered best first, or long rows with a rank (1 = best)."""
    check_format(format)
    drops = Drops()
    if rank_col is not None:
        need = {"prompt_col": prompt_col, "response_col": response_col, "rank_col": rank_col}
        require_columns(df, need, "rankings")
        cols: dict[str, str | None] = {
            "prompt": prompt_col,
            "response": response_col,
            "rank": rank_col,
        }
        rows = parse_scores(
            _base_rows(df, cols, drops), "rank", drops, negate=True, what="rank"
        ).drop("rank")
    else:
        require_columns(df, {"prompt_col": prompt_col, "responses_col": responses_col}, "rankings")
        if not isinstance(df.schema[responses_col], (pl.List, pl.Array)):
            raise StepError(
                f"column '{responses_col}' must hold lists of responses ordered best first, "
                f"not {df.schema[responses_col]}",
                column=responses_col,
                fix="give a list column, or long rows (prompt, response, rank; 1 = best) with "
                "`columns: {rank: <column>}` in the pipeline (`rank_col=` in Python)",
            )
        base = df.with_row_index("__row").select(
            pl.col("__row").cast(pl.Int64),
            pl.col(prompt_col).cast(pl.String).alias("prompt"),
            pl.col(responses_col).cast(pl.List(pl.String)).alias("responses"),
        )
        bad = (
            pl.col("prompt").is_null()
            | pl.col("responses").is_null()
            | pl.col("responses").list.eval(pl.element().is_null()).list.any()
        )
        drops.add_frame(base.filter(bad), "missing_value")
        base = base.filter(~bad)
        short = base.filter(pl.col("responses").list.len() < 2)
        drops.add_frame(short, "fewer_than_two_responses")
        rows = (
            base.filter(pl.col("responses").list.len() >= 2)
            .with_columns(
                pl.col("responses").list.eval(pl.int_range(pl.len()) + 1).alias("rank"),
                pl.col("responses").alias("response"),
            )
            .explode("response", "rank")
            .select(
                "__row", "prompt", "response", (-pl.col("rank").cast(pl.Float64)).alias("score")
            )
        )
        repeat = ~rows.select(pl.struct("__row", "response").is_first_distinct()).to_series()
        drops.add_frame(rows.filter(repeat).drop("score"), "duplicate_response")
        rows = rows.filter(~repeat)
    return pairs_from_scored(
        rows, drops, kind="rankings", rows_in=df.height, strategy=strategy, margin=margin,
        ties=ties, aggregate="mean", format=format, keep_both=keep_both, seed=seed,
    )  # fmt: skip
