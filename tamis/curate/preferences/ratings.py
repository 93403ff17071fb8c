"""Per-response ratings (UltraFeedback style) -> preference pairs; the pairing of scored responses.

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

`pairs_from_scored` is shared with rankings (`tamis.curate.preferences.rankings`), whose ranks
become scores.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl

from tamis.curate.preferences.common import (
    Drops,
    PairResult,
    finalize,
    nothing_left,
    single_turn,
)
from tamis.curate.preferences.config import PreferencePairsConfig, pairs_config, require_columns
from tamis.curate.preferences.stats import build_report


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
    rows: pl.DataFrame, drops: Drops, config: PreferencePairsConfig, *, rows_in: int, seed: int
) -> PairResult:
    """`rows` has prompt, response, score (higher is better) and maybe annotator."""
    kind, strategy, margin, ties = config.kind, config.strategy, config.margin, config.ties
    aggregate = config.aggregate
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
    canon = single_turn(pairs)
    report = build_report(kind, rows_in, canon, drops, pairs_in=n_candidates, extra=extra)
    if canon.height == 0:
        raise nothing_left(kind, report)
    return PairResult(finalize(canon, config.format, config.keep_both), report, drops.frame())


def base_rows(df: pl.DataFrame, cols: dict[str, str | None], drops: Drops) -> pl.DataFrame:
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
    df: pl.DataFrame, config: PreferencePairsConfig | None = None, *, seed: int = 0, **params: Any
) -> PairResult:
    """Per-response ratings -> pairs (see the module docstring).

    `config` is a `PreferencePairsConfig` with `from: ratings`; or pass its fields as `params`
    (`columns={"score": "rating"}`, `strategy="all_pairs"`, ...). The annotator column is used
    when the data has it.
    """
    config = pairs_config("ratings", config, **params)
    cols: dict[str, str | None] = dict(config.roles())
    cols["annotator"] = config.annotator_column(df.columns)
    require_columns(df, {k: v for k, v in cols.items() if v is not None}, "ratings")
    drops = Drops()
    rows = parse_scores(base_rows(df, cols, drops), "score", drops)
    return pairs_from_scored(rows, drops, config, rows_in=df.height, seed=seed)
