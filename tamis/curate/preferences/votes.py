"""Pairwise votes from several annotators -> majority-label preference pairs with agreement.

Rows are (prompt, a, b, winner[, annotator]). `winner` names the preferred response: `a`/`b` (also
`model_a`/`model_b`, `response_a`/`response_b`, `1`/`2`, `left`/`right`, case-insensitive, or the
response text itself) or a tie (`tie`, `tie (bothbad)`, `both`, `neither`, `equal`, `draw`). Votes
on the same (prompt, {a, b}) are pooled whichever order a and b were shown in.

Per pair: the majority label (a, b or tie) and `agreement` = the majority's share of the votes.
Pairs whose two sides got the same number of votes (`no_majority`), or whose agreement is below
`min_agreement` (`low_agreement`), or with fewer than `min_votes` votes (`few_votes`) are dropped, or
exported to the `adjudicate` frame for a person to decide (`below: adjudicate`). A tie majority is
dropped (`tie`) or kept with `tie = true` (`ties: keep`).
The report gives the agreement distribution and chance-corrected agreement (Fleiss' kappa and
Krippendorff's alpha over the labels a/b/tie, from `tamis.curate.agreement`).
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.agreement import fleiss_kappa, krippendorff_alpha_nominal
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

A_WORDS = ("a", "model_a", "response_a", "1", "left", "first")
B_WORDS = ("b", "model_b", "response_b", "2", "right", "second")
TIE_WORDS = ("tie", "tie (bothbad)", "both", "neither", "equal", "draw", "both_bad", "both_good")


def _side() -> pl.Expr:
    """'a', 'b', 'tie' or null (unrecognised) for each vote."""
    w = pl.col("winner").str.strip_chars().str.to_lowercase()
    raw = pl.col("winner")
    return (
        pl.when(w.is_in(A_WORDS) | (raw == pl.col("a")))
        .then(pl.lit("a"))
        .when(w.is_in(B_WORDS) | (raw == pl.col("b")))
        .then(pl.lit("b"))
        .when(w.is_in(TIE_WORDS))
        .then(pl.lit("tie"))
    )


def pairs_from_votes(
    df: pl.DataFrame,
    *,
    prompt_col: str = "prompt",
    a_col: str = "a",
    b_col: str = "b",
    winner_col: str = "winner",
    annotator_col: str | None = "annotator",
    min_agreement: float = 0.5,
    min_votes: int = 1,
    below: str = "drop",
    ties: str = "drop",
    format: str = "standard",
    keep_both: bool = True,
    seed: int = 0,
) -> PairResult:
    """Votes -> pairs with `agreement`, `n_votes`, `votes_chosen`, `votes_rejected`, `votes_tie`."""
    check_format(format)
    if below not in ("drop", "adjudicate"):
        raise StepError(f"unknown below '{below}'", field="below", fix="use drop or adjudicate")
    if ties not in ("drop", "keep"):
        raise StepError(f"unknown ties '{ties}'", field="ties", fix="use drop or keep")
    if not 0.0 <= min_agreement <= 1.0:
        raise StepError("min_agreement must be in [0, 1]", field="min_agreement", fix="e.g. 0.6")
    need = {"prompt_col": prompt_col, "a_col": a_col, "b_col": b_col, "winner_col": winner_col}
    if annotator_col:
        need["annotator_col"] = annotator_col
    require_columns(df, need, "votes")
    drops = Drops()
    names = {"prompt": prompt_col, "a": a_col, "b": b_col, "winner": winner_col}
    if annotator_col:
        names["annotator"] = annotator_col
    rows = df.with_row_index("__row").select(
        pl.col("__row").cast(pl.Int64),
        *[pl.col(s).cast(pl.String).alias(d) for d, s in names.items()],
    )
    bad = pl.any_horizontal(*[pl.col(c).is_null() for c in ("prompt", "a", "b", "winner")])
    drops.add_frame(rows.filter(bad), "missing_value")
    rows = rows.filter(~bad).with_columns(_side().alias("side"))
    drops.add_frame(rows.filter(pl.col("side").is_null()).drop("side"), "invalid_winner")
    rows = rows.filter(pl.col("side").is_not_null())
    same = pl.col("a") == pl.col("b")
    drops.add_frame(rows.filter(same).drop("side"), "identical_responses")
    rows = rows.filter(~same)
    # canonical order: left < right, so (a, b) and (b, a) votes are pooled
    swap = pl.col("a") > pl.col("b")
    rows = rows.with_columns(
        pl.when(swap).then(pl.col("b")).otherwise(pl.col("a")).alias("left"),
        pl.when(swap).then(pl.col("a")).otherwise(pl.col("b")).alias("right"),
        pl.when(pl.col("side") == "tie")
        .then(pl.lit("tie"))
        .when((pl.col("side") == "a") != swap)
        .then(pl.lit("left"))
        .otherwise(pl.lit("right"))
        .alias("vote"),
    )
    if annotator_col:
        first = rows.select(
            pl.struct("prompt", "left", "right", "annotator").is_first_distinct()
        ).to_series()
        drops.add_frame(rows.filter(~first).drop("side", "left", "right", "vote"), "duplicate_vote")
        rows = rows.filter(first)
    key = ["prompt", "left", "right"]
    g = (
        rows.group_by(key, maintain_order=True)
        .agg(
            pl.len().alias("n_votes"),
            (pl.col("vote") == "left").sum().alias("n_left"),
            (pl.col("vote") == "right").sum().alias("n_right"),
            (pl.col("vote") == "tie").sum().alias("n_tie"),
        )
        .with_columns(
            (pl.max_horizontal("n_left", "n_right", "n_tie") / pl.col("n_votes")).alias("agreement")
        )
    )
    counts = g.select("n_left", "n_right", "n_tie").to_numpy()
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    review: list[dict[str, Any]] = []
    for rec in g.iter_rows(named=True):
        nl, nr, nt = rec["n_left"], rec["n_right"], rec["n_tie"]
        reason = None
        if rec["n_votes"] < min_votes:
            reason = "few_votes"
        elif nl == nr and nl >= nt:
            reason = "no_majority"
        elif rec["agreement"] < min_agreement:
            reason = "low_agreement"
        is_tie = reason is None and nt > max(nl, nr)
        if is_tie and ties == "drop":
            reason = "tie"
        if reason is not None:
            detail = {k: rec[k] for k in ("left", "right", "n_votes", "n_left", "n_right", "n_tie")}
            drops.add(reason, "pair", prompt=rec["prompt"], detail=detail)
            if below == "adjudicate" and reason != "tie":
                review.append({**rec, "reason": reason})
            continue
        left_wins = nl > nr or (is_tie and rng.random() < 0.5)
        c, r = ("left", "right") if left_wins else ("right", "left")
        out.append(
            {
                "prompt": rec["prompt"],
                "chosen": rec[c],
                "rejected": rec[r],
                "agreement": rec["agreement"],
                "n_votes": rec["n_votes"],
                "votes_chosen": rec[f"n_{c}"],
                "votes_rejected": rec[f"n_{r}"],
                "votes_tie": nt,
                "tie": is_tie,
            }
        )
    schema = {
        "prompt": pl.String, "chosen": pl.String, "rejected": pl.String,
        "agreement": pl.Float64, "n_votes": pl.Int64, "votes_chosen": pl.Int64,
        "votes_rejected": pl.Int64, "votes_tie": pl.Int64, "tie": pl.Boolean,
    }  # fmt: skip
    pairs = pl.DataFrame(out, schema=schema)
    ag = g.get_column("agreement")
    agreement: dict[str, Any] = {
        "votes": rows.height,
        "pairs_voted": g.height,
        "mean": float(ag.mean()) if g.height else None,  # type: ignore[arg-type]
        "unanimous_share": float((ag == 1.0).mean()) if g.height else None,  # type: ignore[arg-type]
        "votes_per_pair": float(g.get_column("n_votes").mean()) if g.height else None,  # type: ignore[arg-type]
        "fleiss_kappa": _finite(fleiss_kappa(counts)) if g.height else None,
        "krippendorff_alpha": _finite(krippendorff_alpha_nominal(counts)) if g.height else None,
        "min_agreement": min_agreement,
    }
    if annotator_col:
        agreement["annotators"] = int(rows.get_column("annotator").n_unique())
    canon = pairs.with_columns(
        user_messages(pl.col("prompt")).alias("prompt_messages"),
        pl.lit(1, dtype=pl.Int64).alias("n_turns"),
    )
    report = build_report(
        "votes", df.height, canon, drops, pairs_in=g.height, extra={"agreement": agreement}
    )
    report["adjudicate"] = len(review)
    if canon.height == 0:
        raise nothing_left("votes", report)
    adjudicate = pl.DataFrame(
        review,
        schema={**g.schema, "reason": pl.String},
    ).rename(
        {"left": "a", "right": "b", "n_left": "votes_a", "n_right": "votes_b", "n_tie": "votes_tie"}
    )
    return PairResult(finalize(canon, format, keep_both), report, drops.frame(), adjudicate)


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
