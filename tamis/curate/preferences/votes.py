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
from tamis.curate.preferences.common import Drops, PairResult, finalize, nothing_left, single_turn
from tamis.curate.preferences.config import PreferencePairsConfig, pairs_config, require_columns
from tamis.curate.preferences.stats import build_report

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


def _vote_rows(
    df: pl.DataFrame, names: dict[str, str], drops: Drops, per_annotator: bool
) -> pl.DataFrame:
    """Valid votes, each as (prompt, left, right, vote) with left < right so (a, b) and (b, a)
    votes are pooled; bad rows and repeated votes of one annotator are dropped with a reason."""
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
    if per_annotator:
        first = rows.select(
            pl.struct("prompt", "left", "right", "annotator").is_first_distinct()
        ).to_series()
        drops.add_frame(rows.filter(~first).drop("side", "left", "right", "vote"), "duplicate_vote")
        rows = rows.filter(first)
    return rows


def _tally(rows: pl.DataFrame) -> pl.DataFrame:
    """Per (prompt, left, right): votes for each side and for a tie, and the majority's share."""
    return (
        rows.group_by(["prompt", "left", "right"], maintain_order=True)
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


def _reason(rec: dict[str, Any], config: PreferencePairsConfig) -> tuple[str | None, bool]:
    """Why a tallied pair is dropped (None: kept), and whether its majority is a tie."""
    nl, nr, nt = rec["n_left"], rec["n_right"], rec["n_tie"]
    reason = None
    if rec["n_votes"] < config.min_votes:
        reason = "few_votes"
    elif nl == nr and nl >= nt:
        reason = "no_majority"
    elif rec["agreement"] < config.min_agreement:
        reason = "low_agreement"
    is_tie = reason is None and nt > max(nl, nr)
    if is_tie and config.ties == "drop":
        reason = "tie"
    return reason, is_tie


def _majority_pairs(
    tally: pl.DataFrame, config: PreferencePairsConfig, drops: Drops, seed: int
) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """The kept pairs (chosen = the majority side) and the pairs left for adjudication."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    review: list[dict[str, Any]] = []
    for rec in tally.iter_rows(named=True):
        reason, is_tie = _reason(rec, config)
        if reason is not None:
            detail = {k: rec[k] for k in ("left", "right", "n_votes", "n_left", "n_right", "n_tie")}
            drops.add(reason, "pair", prompt=rec["prompt"], detail=detail)
            if config.below == "adjudicate" and reason != "tie":
                review.append({**rec, "reason": reason})
            continue
        left_wins = rec["n_left"] > rec["n_right"] or (is_tie and rng.random() < 0.5)
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
                "votes_tie": rec["n_tie"],
                "tie": is_tie,
            }
        )
    return pl.DataFrame(out, schema=PAIR_SCHEMA), review


#: the pairs' own columns from votes, in order
PAIR_SCHEMA = {
    "prompt": pl.String, "chosen": pl.String, "rejected": pl.String,
    "agreement": pl.Float64, "n_votes": pl.Int64, "votes_chosen": pl.Int64,
    "votes_rejected": pl.Int64, "votes_tie": pl.Int64, "tie": pl.Boolean,
}  # fmt: skip


def _agreement_report(
    rows: pl.DataFrame, tally: pl.DataFrame, config: PreferencePairsConfig, per_annotator: bool
) -> dict[str, Any]:
    counts = tally.select("n_left", "n_right", "n_tie").to_numpy()
    ag = tally.get_column("agreement")
    some = tally.height > 0
    out: dict[str, Any] = {
        "votes": rows.height,
        "pairs_voted": tally.height,
        "mean": float(ag.mean()) if some else None,  # type: ignore[arg-type]
        "unanimous_share": float((ag == 1.0).mean()) if some else None,  # type: ignore[arg-type]
        "votes_per_pair": float(tally.get_column("n_votes").mean()) if some else None,  # type: ignore[arg-type]
        "fleiss_kappa": _finite(fleiss_kappa(counts)) if some else None,
        "krippendorff_alpha": _finite(krippendorff_alpha_nominal(counts)) if some else None,
        "min_agreement": config.min_agreement,
    }
    if per_annotator:
        out["annotators"] = int(rows.get_column("annotator").n_unique())
    return out


def pairs_from_votes(
    df: pl.DataFrame, config: PreferencePairsConfig | None = None, *, seed: int = 0, **params: Any
) -> PairResult:
    """Votes -> pairs with `agreement`, `n_votes`, `votes_chosen`, `votes_rejected`, `votes_tie`.

    `config` is a `PreferencePairsConfig` with `from: votes`; or pass its fields as `params`. The
    annotator column is used when the data has it.
    """
    config = pairs_config("votes", config, **params)
    roles = config.roles()
    names = {k: roles[k] for k in ("prompt", "a", "b", "winner")}
    annotator = config.annotator_column(df.columns)
    if annotator is not None:
        names["annotator"] = annotator
    require_columns(df, names, "votes")
    drops = Drops()
    rows = _vote_rows(df, names, drops, annotator is not None)
    tally = _tally(rows)
    pairs, review = _majority_pairs(tally, config, drops, seed)
    canon = single_turn(pairs)
    agreement = _agreement_report(rows, tally, config, annotator is not None)
    report = build_report(
        "votes", df.height, canon, drops, pairs_in=tally.height, extra={"agreement": agreement}
    )
    report["adjudicate"] = len(review)
    if canon.height == 0:
        raise nothing_left("votes", report)
    adjudicate = pl.DataFrame(review, schema={**tally.schema, "reason": pl.String}).rename(
        {"left": "a", "right": "b", "n_left": "votes_a", "n_right": "votes_b", "n_tie": "votes_tie"}
    )
    return PairResult(
        finalize(canon, config.format, config.keep_both), report, drops.frame(), adjudicate
    )


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
