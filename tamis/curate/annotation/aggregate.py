"""Aggregation that weighs raters: one consensus label per item, or one score per compared thing.

    out, report, tables = aggregate_labels(df, AggregateLabelsConfig(method="dawid_skene"))

- `method: dawid_skene` (default) or `majority`: a long `(item, annotator, label)` table -> one
  row per item with the consensus `label`, its posterior `label_confidence` (the majority's share
  for `majority`) and `num_annotations`, plus the item's other columns (first value); tables
  `raters` (annotations, agreement with consensus, gold accuracy, Dawid-Skene estimated accuracy),
  `confusion` (each rater's estimated confusion matrix, long) and, with `gold`, `gold_drift` (gold
  accuracy per rater and time window against the rater's other windows).
- `method: bradley_terry`: `(left, right, winner)` votes -> one row per compared thing with its
  score (log-strength), strength, wins, comparisons and rank; table `raters` gives each rater's
  agreement with the order the scores imply.

The algorithms: `dawid_skene.py` (with the rater report), `bradley_terry.py`, `drift.py`.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.annotation.bradley_terry import bradley_terry, win_matrix
from tamis.curate.annotation.dawid_skene import DawidSkeneResult, dawid_skene, rater_report
from tamis.curate.annotation.drift import gold_drift
from tamis.errors import DataError


class AggregateLabelsConfig(Config):
    """Which aggregation, on which columns (the `aggregate_labels` params)."""

    method: Literal["dawid_skene", "majority", "bradley_terry"] = Field(
        default="dawid_skene", description="dawid_skene, majority (votes) or bradley_terry (pairs)"
    )
    item: str = Field(default="item", description="the item id column")
    annotator: str = Field(default="annotator", description="the annotator id column")
    label: str = Field(default="label", description="the label column")
    gold: str | None = Field(default=None, description="a gold-label column (null where none)")
    time: str | None = Field(default=None, description="time column for gold-drift windows")
    window: str | int = Field(default=50, description="gold-drift window ('1w' or a number)")
    drift_alpha: float = Field(
        default=0.05,
        gt=0.0,
        lt=1.0,
        description="drift: a window's gold accuracy is below the rater's other windows "
        "(one-sided Fisher exact test, Bonferroni over the rater's windows)",
    )
    min_window_items: int = Field(default=10, ge=1, description="gold items a window needs")
    left: str = Field(default="left", description="bradley_terry: one side of each vote")
    right: str = Field(default="right", description="bradley_terry: the other side")
    winner: str = Field(default="winner", description="bradley_terry: the side voted better")
    sides: list[str] | None = Field(
        default=None,
        min_length=2,
        max_length=2,
        description="bradley_terry: the two values of `winner` meaning 'left won' and 'right "
        "won' (e.g. [chosen, rejected] for a `tamis annotate import` of a preference task, "
        "with left/right the columns naming what produced each response)",
    )
    prior: float = Field(
        default=1.0, ge=0.0, description="bradley_terry: virtual wins and losses per item"
    )
    max_iter: int = Field(default=500, ge=1, description="dawid_skene: EM iterations at most")


class Aggregated(NamedTuple):
    """The aggregate (one row per item or per compared thing), its report and its tables."""

    frame: pl.DataFrame
    report: dict[str, Any]
    tables: dict[str, pl.DataFrame]


def aggregate_labels(
    df: pl.DataFrame, config: AggregateLabelsConfig, *, seed: int = 0
) -> Aggregated:
    """Consensus labels (dawid_skene, majority) or Bradley-Terry scores (see the module doc)."""
    if config.method == "bradley_terry":
        return _by_pairs(df, config)
    return _by_votes(df, config, seed)


def _majority(
    data: pl.DataFrame, res: DawidSkeneResult, c: AggregateLabelsConfig, seed: int
) -> tuple[list[Any], np.ndarray]:
    """The most voted label per item (ties broken by the seed) and its share of the votes."""
    item_pos = {x: n for n, x in enumerate(res.items)}
    cls_pos = {x: n for n, x in enumerate(res.classes)}
    counts = np.zeros((len(res.items), len(res.classes)))
    for it, lab in data.select(c.item, c.label).iter_rows():
        counts[item_pos[it], cls_pos[lab]] += 1
    shares = counts / counts.sum(axis=1, keepdims=True)
    tie = np.random.default_rng(seed).random(counts.shape) * 1e-9
    choice = (shares + tie).argmax(axis=1)
    return [res.classes[k] for k in choice], shares[np.arange(len(choice)), choice]


def _drift(data: pl.DataFrame, out: pl.DataFrame, c: AggregateLabelsConfig) -> tuple[
    pl.DataFrame, dict[str, Any]
]:  # fmt: skip
    """The gold-drift table and its report entries (drift windows, consensus gold accuracy)."""
    assert c.gold is not None
    drift = gold_drift(data, c)
    flagged = drift.filter(pl.col("drift"))
    report: dict[str, Any] = {
        "gold_drift": {
            "windows": drift.height,
            "drift_windows": flagged.height,
            "annotators_drifting": sorted(set(flagged["annotator"].to_list())),
        }
    }
    on_gold = out.filter(pl.col(c.gold).is_not_null())
    if on_gold.height:
        hits = (on_gold[c.label].cast(pl.String) == on_gold[c.gold].cast(pl.String)).sum()
        report["consensus_gold_accuracy"] = {"accuracy": hits / on_gold.height, "n": on_gold.height}
    return drift, report


def _by_votes(df: pl.DataFrame, c: AggregateLabelsConfig, seed: int) -> Aggregated:
    data = df.filter(pl.col(c.label).is_not_null()) if c.label in df.columns else df
    res = dawid_skene(data, item=c.item, annotator=c.annotator, label=c.label, max_iter=c.max_iter)
    if c.method == "majority":
        labels, conf = _majority(data, res, c, seed)
    else:
        labels, conf = res.labels(), res.posteriors.max(axis=1)
    n_ann = data.group_by(c.item).agg(pl.len().alias("num_annotations"))
    carry = [
        col for col in data.columns if col not in (c.annotator, c.label, c.gold, c.time, c.item)
    ]
    first = data.group_by(c.item).agg([pl.col(col).first() for col in carry])
    out = (
        pl.DataFrame(
            {
                c.item: pl.Series(res.items, dtype=data.schema[c.item]),
                c.label: pl.Series(labels, dtype=data.schema[c.label]),
                "label_confidence": conf,
            }
        )
        .join(n_ann, on=c.item, how="left")
        .join(first, on=c.item, how="left")
    )
    if c.gold is not None:
        gold_items = data.group_by(c.item).agg(pl.col(c.gold).drop_nulls().first())
        out = out.join(gold_items, on=c.item, how="left")
    raters = rater_report(
        data, out, item=c.item, annotator=c.annotator, label=c.label, gold=c.gold, ds=res
    )
    tables = {"raters": raters, "confusion": res.confusion_table()}
    report: dict[str, Any] = {
        "method": c.method,
        "items": out.height,
        "annotations": data.height,
        "classes": [str(k) for k in res.classes],
        "class_priors": {str(k): float(v) for k, v in zip(res.classes, res.priors, strict=True)},
        "em_iterations": res.n_iter,
        "em_converged": res.converged,
        "rater_table": raters.to_dicts()[:20],
    }
    if c.gold is not None:
        tables["gold_drift"], drift_report = _drift(data, out, c)
        report.update(drift_report)
    return Aggregated(out.sort(c.item), report, tables)


def _winner_as_side(df: pl.DataFrame, c: AggregateLabelsConfig) -> pl.DataFrame:
    """With `sides`, rewrite `winner` from 'left won'/'right won' values to the winning side."""
    if c.sides is None:
        return df
    if c.winner not in df.columns:
        raise DataError(f"column '{c.winner}' is not in the data", column=c.winner)
    values = set(df.get_column(c.winner).drop_nulls().cast(pl.String).unique().to_list())
    if not values <= set(c.sides):
        raise DataError(
            f"'{c.winner}' holds {sorted(values - set(c.sides))[:5]}, not only {c.sides}",
            column=c.winner,
            field="sides",
            fix="list the two values that mean 'left won' and 'right won'",
        )
    w = pl.col(c.winner).cast(pl.String)
    return df.with_columns(
        pl.when(w == c.sides[0])
        .then(pl.col(c.left).cast(pl.String))
        .when(w == c.sides[1])
        .then(pl.col(c.right).cast(pl.String))
        .alias(c.winner)
    )


def _rater_agreement(
    df: pl.DataFrame, table: pl.DataFrame, c: AggregateLabelsConfig
) -> pl.DataFrame:
    """Per rater: votes and the share that agree with the order the scores imply."""
    score = dict(zip(table["name"].to_list(), table["score"].to_list(), strict=True))
    votes = df.select(
        pl.col(c.annotator).cast(pl.String).alias("annotator"),
        pl.col(c.left).cast(pl.String).alias("_l"),
        pl.col(c.right).cast(pl.String).alias("_r"),
        pl.col(c.winner).cast(pl.String).alias("_w"),
    ).drop_nulls()
    agree = [
        (score[w] >= score[r if w == lft else lft])
        for lft, r, w in votes.select("_l", "_r", "_w").iter_rows()
        if w in (lft, r)
    ]
    votes = votes.filter((pl.col("_w") == pl.col("_l")) | (pl.col("_w") == pl.col("_r")))
    return (
        votes.with_columns(pl.Series("_agree", agree, dtype=pl.Boolean))
        .group_by("annotator")
        .agg(pl.len().alias("votes"), pl.col("_agree").mean().alias("agreement_with_scores"))
        .sort("annotator")
    )


def _by_pairs(df: pl.DataFrame, c: AggregateLabelsConfig) -> Aggregated:
    df = _winner_as_side(df, c)
    res = bradley_terry(df, left=c.left, right=c.right, winner=c.winner, prior=c.prior)
    _, _, bad = win_matrix(df, left=c.left, right=c.right, winner=c.winner)
    table = res.table()
    tables: dict[str, pl.DataFrame] = {}
    if c.annotator in df.columns:
        tables["raters"] = _rater_agreement(df, table, c)
    report = {
        "method": "bradley_terry",
        "compared": table.height,
        "votes": int(res.comparisons.sum() // 2),
        "votes_not_for_either_side": bad,
        "prior": c.prior,
        "iterations": res.n_iter,
        "converged": res.converged,
        "top": table.head(10).to_dicts(),
    }
    return Aggregated(table, report, tables)


def aggregate_schema(source: pl.Schema, c: AggregateLabelsConfig) -> pl.Schema:
    """The schema of `aggregate_labels(df, c).frame` for an input of schema `source`."""
    if c.method == "bradley_terry":
        return pl.Schema(
            {
                "name": pl.String(),
                "score": pl.Float64(),
                "strength": pl.Float64(),
                "wins": pl.Int64(),
                "comparisons": pl.Int64(),
                "rank": pl.Int64(),
            }
        )
    own = (c.annotator, c.label, c.gold, c.time, c.item)
    cols: dict[str, Any] = {
        c.item: source.get(c.item, pl.Unknown),
        c.label: source.get(c.label, pl.Unknown),
        "label_confidence": pl.Float64(),
        "num_annotations": pl.UInt32(),
        **{name: dtype for name, dtype in source.items() if name not in own},
    }
    if c.gold is not None:
        cols[c.gold] = source.get(c.gold, pl.Unknown)
    return pl.Schema(cols)
