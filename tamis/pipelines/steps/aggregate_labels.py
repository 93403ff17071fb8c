"""Step `aggregate_labels`: weigh raters (tamis.curate.annotation.aggregate).

- `method: dawid_skene` (default) or `majority`: a long `(item, annotator, label)` table -> one
  row per item with the consensus `label`, its posterior `label_confidence` and `num_annotations`;
  tables `raters` (annotations, agreement with consensus, gold accuracy, Dawid-Skene estimated
  accuracy), `confusion` (each rater's estimated confusion matrix, long) and, with `gold`,
  `gold_drift` (gold accuracy per rater and time window against the rater's other windows,
  `aggregate.gold_drift`).
- `method: bradley_terry`: `(left, right, winner)` votes -> one row per compared thing with its
  score (log-strength), strength, wins, comparisons and rank; table `raters` gives each rater's
  agreement with the order the scores imply.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.pipelines.steps.base import Step, StepContext, StepOutput, StepParams


class AggregateLabelsParams(StepParams):
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


def _aggregate_votes(
    df: pl.DataFrame, p: AggregateLabelsParams, seed: int
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, pl.DataFrame]]:
    from tamis.curate.annotation.aggregate import dawid_skene, gold_drift, rater_report

    data = df.filter(pl.col(p.label).is_not_null()) if p.label in df.columns else df
    res = dawid_skene(data, item=p.item, annotator=p.annotator, label=p.label, max_iter=p.max_iter)
    k = len(res.classes)
    if p.method == "majority":
        item_pos = {x: n for n, x in enumerate(res.items)}
        cls_pos = {x: n for n, x in enumerate(res.classes)}
        counts = np.zeros((len(res.items), k))
        for it, lab in data.select(p.item, p.label).iter_rows():
            counts[item_pos[it], cls_pos[lab]] += 1
        shares = counts / counts.sum(axis=1, keepdims=True)
        tie = np.random.default_rng(seed).random(counts.shape) * 1e-9
        choice = (shares + tie).argmax(axis=1)
        labels = [res.classes[c] for c in choice]
        conf = shares[np.arange(len(choice)), choice]
    else:
        labels = res.labels()
        conf = res.posteriors.max(axis=1)
    n_ann = data.group_by(p.item).agg(pl.len().alias("num_annotations"))
    carry = [c for c in data.columns if c not in (p.annotator, p.label, p.gold, p.time, p.item)]
    first = data.group_by(p.item).agg([pl.col(c).first() for c in carry])
    out = (
        pl.DataFrame(
            {
                p.item: pl.Series(res.items, dtype=data.schema[p.item]),
                p.label: pl.Series(labels, dtype=data.schema[p.label]),
                "label_confidence": conf,
            }
        )
        .join(n_ann, on=p.item, how="left")
        .join(first, on=p.item, how="left")
    )
    if p.gold is not None:
        gold_items = data.group_by(p.item).agg(pl.col(p.gold).drop_nulls().first())
        out = out.join(gold_items, on=p.item, how="left")
    raters = rater_report(
        data, out, item=p.item, annotator=p.annotator, label=p.label, gold=p.gold, ds=res
    )
    tables = {"raters": raters, "confusion": res.confusion_table()}
    report: dict[str, Any] = {
        "method": p.method,
        "items": out.height,
        "annotations": data.height,
        "classes": [str(c) for c in res.classes],
        "class_priors": {str(c): float(v) for c, v in zip(res.classes, res.priors, strict=True)},
        "em_iterations": res.n_iter,
        "em_converged": res.converged,
        "rater_table": raters.to_dicts()[:20],
    }
    if p.gold is not None:
        drift = gold_drift(
            data,
            annotator=p.annotator,
            label=p.label,
            gold=p.gold,
            time=p.time,
            window=p.window,
            min_window_items=p.min_window_items,
            alpha=p.drift_alpha,
        )
        tables["gold_drift"] = drift
        flagged = drift.filter(pl.col("drift"))
        report["gold_drift"] = {
            "windows": drift.height,
            "drift_windows": flagged.height,
            "annotators_drifting": sorted(set(flagged["annotator"].to_list())),
        }
        on_gold = out.filter(pl.col(p.gold).is_not_null())
        if on_gold.height:
            hits = (on_gold[p.label].cast(pl.String) == on_gold[p.gold].cast(pl.String)).sum()
            report["consensus_gold_accuracy"] = {
                "accuracy": hits / on_gold.height,
                "n": on_gold.height,
            }
    return out.sort(p.item), report, tables


def _aggregate_pairs(
    df: pl.DataFrame, p: AggregateLabelsParams
) -> tuple[pl.DataFrame, dict[str, Any], dict[str, pl.DataFrame]]:
    from tamis.curate.annotation.aggregate import bradley_terry, win_matrix
    from tamis.errors import StepError

    if p.sides is not None:
        if p.winner not in df.columns:
            raise StepError(f"column '{p.winner}' is not in the data", column=p.winner)
        values = set(df.get_column(p.winner).drop_nulls().cast(pl.String).unique().to_list())
        if not values <= set(p.sides):
            raise StepError(
                f"'{p.winner}' holds {sorted(values - set(p.sides))[:5]}, not only {p.sides}",
                column=p.winner,
                field="sides",
                fix="list the two values that mean 'left won' and 'right won'",
            )
        w = pl.col(p.winner).cast(pl.String)
        df = df.with_columns(
            pl.when(w == p.sides[0])
            .then(pl.col(p.left).cast(pl.String))
            .when(w == p.sides[1])
            .then(pl.col(p.right).cast(pl.String))
            .alias(p.winner)
        )
    res = bradley_terry(df, left=p.left, right=p.right, winner=p.winner, prior=p.prior)
    _, _, bad = win_matrix(df, left=p.left, right=p.right, winner=p.winner)
    table = res.table()
    tables: dict[str, pl.DataFrame] = {}
    if p.annotator in df.columns:
        score = dict(zip(table["name"].to_list(), table["score"].to_list(), strict=True))
        votes = df.select(
            pl.col(p.annotator).cast(pl.String).alias("annotator"),
            pl.col(p.left).cast(pl.String).alias("_l"),
            pl.col(p.right).cast(pl.String).alias("_r"),
            pl.col(p.winner).cast(pl.String).alias("_w"),
        ).drop_nulls()
        agree = [
            (score[w] >= score[r if w == lft else lft])
            for lft, r, w in votes.select("_l", "_r", "_w").iter_rows()
            if w in (lft, r)
        ]
        votes = votes.filter((pl.col("_w") == pl.col("_l")) | (pl.col("_w") == pl.col("_r")))
        tables["raters"] = (
            votes.with_columns(pl.Series("_agree", agree, dtype=pl.Boolean))
            .group_by("annotator")
            .agg(pl.len().alias("votes"), pl.col("_agree").mean().alias("agreement_with_scores"))
            .sort("annotator")
        )
    report = {
        "method": "bradley_terry",
        "compared": table.height,
        "votes": int(res.comparisons.sum() // 2),
        "votes_not_for_either_side": bad,
        "prior": p.prior,
        "iterations": res.n_iter,
        "converged": res.converged,
        "top": table.head(10).to_dicts(),
    }
    return table, report, tables


class AggregateLabels(Step):
    """Weigh raters: Dawid-Skene (or majority) consensus with per-rater confusion matrices, gold
    accuracy and drift; or Bradley-Terry scores from pairwise votes."""

    name = "aggregate_labels"
    Params = AggregateLabelsParams

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        p: AggregateLabelsParams = params
        df = inputs["input"].collect()
        if p.method == "bradley_terry":
            out, report, tables = _aggregate_pairs(df, p)
        else:
            out, report, tables = _aggregate_votes(df, p, ctx.seed)
        return StepOutput(frames={"data": out}, report=report, tables=tables)
