"""Dawid-Skene consensus for class labels, and the per-rater report (gold accuracy, agreement).

    res = dawid_skene(df, item="item", annotator="annotator", label="label")
    res.labels()            # item -> consensus label (the posterior's argmax)
    res.confusion           # annotators x true class x given class, rows sum to 1

Dawid-Skene (Dawid & Skene 1979): EM over a prior `pi` on the true classes and one confusion
matrix per rater `theta[a, t, g] = P(rater a says g | true class t)`; the E step gives each item's
posterior `T[i, t] ~ pi_t * prod_{(i,a,g)} theta[a, t, g]`, the M step re-estimates `pi` as the
mean posterior and `theta[a, t, :]` from the posterior-weighted counts of each rater's answers.
Started from majority-vote shares (as crowd-kit does); entries are floored at 1e-12 before
normalising so a rater never seen on a class does not zero a posterior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.annotation.columns import require_columns
from tamis.errors import DataError

EPS = 1e-12


@dataclass
class DawidSkeneResult:
    items: list[Any]
    classes: list[Any]
    annotators: list[Any]
    posteriors: np.ndarray  # items x classes
    priors: np.ndarray  # classes
    confusion: np.ndarray  # annotators x true x given
    n_iter: int
    converged: bool
    log_likelihood: float

    def labels(self) -> list[Any]:
        return [self.classes[k] for k in self.posteriors.argmax(axis=1)]

    def rater_accuracy(self) -> np.ndarray:
        """Each rater's expected accuracy: sum_t pi_t theta[a, t, t]."""
        diag = np.einsum("att->at", self.confusion)
        return np.asarray(diag @ self.priors, dtype=np.float64)

    def confusion_table(self) -> pl.DataFrame:
        a, t, g = np.meshgrid(
            np.arange(len(self.annotators)),
            np.arange(len(self.classes)),
            np.arange(len(self.classes)),
            indexing="ij",
        )
        return pl.DataFrame(
            {
                "annotator": [str(self.annotators[i]) for i in a.ravel()],
                "true_label": [str(self.classes[i]) for i in t.ravel()],
                "given_label": [str(self.classes[i]) for i in g.ravel()],
                "probability": self.confusion.ravel(),
            }
        )


def _codes(
    df: pl.DataFrame, item: str, annotator: str, label: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], list[Any], list[Any]]:
    require_columns(df, {"item": item, "annotator": annotator, "label": label})
    data = df.select(item, annotator, label).drop_nulls()
    if data.height == 0:
        raise DataError("no annotations with a label", column=label)
    # sorted categories: results never depend on row order
    items = data.get_column(item).unique().sort().to_list()
    anns = data.get_column(annotator).unique().sort().to_list()
    classes = data.get_column(label).unique().sort().to_list()

    def idx(col: str, values: list[Any]) -> np.ndarray:
        lookup = pl.DataFrame(
            {col: pl.Series(values, dtype=data.schema[col]), "_k": range(len(values))}
        )
        return (
            data.select(col)
            .join(lookup, on=col, how="left", maintain_order="left")["_k"]
            .to_numpy()
        )

    return idx(item, items), idx(annotator, anns), idx(label, classes), items, anns, classes


def dawid_skene(
    df: pl.DataFrame,
    *,
    item: str,
    annotator: str,
    label: str,
    max_iter: int = 500,
    tol: float = 1e-7,
) -> DawidSkeneResult:
    """Dawid-Skene EM on a long `(item, annotator, label)` table (null labels ignored). Stops when
    no posterior moves by more than `tol` or the log-likelihood changes by less than `tol` of
    itself (EM can crawl on flat likelihoods)."""
    i, a, c, items, anns, classes = _codes(df, item, annotator, label)
    n, m, k = len(items), len(anns), len(classes)
    counts = np.zeros((n, k))
    np.add.at(counts, (i, c), 1.0)
    post = counts / counts.sum(axis=1, keepdims=True)
    converged = False
    it = 0
    loglik = float("nan")
    for _round in range(max_iter):
        it += 1
        priors = post.mean(axis=0)
        conf = np.zeros((m, k, k))
        np.add.at(conf, (a, slice(None), c), post[i])  # type: ignore[arg-type]
        conf = np.clip(conf, EPS, None)
        conf /= conf.sum(axis=2, keepdims=True)
        log_post = np.tile(np.log(np.clip(priors, EPS, None)), (n, 1))
        np.add.at(log_post, i, np.log(conf[a, :, c]))
        shift = log_post.max(axis=1, keepdims=True)
        unnorm = np.exp(log_post - shift)
        total = unnorm.sum(axis=1, keepdims=True)
        new = unnorm / total
        prev, loglik = loglik, float((np.log(total) + shift).sum())
        change = float(np.abs(new - post).max())
        post = new
        if change < tol or abs(loglik - prev) <= tol * abs(loglik):
            converged = True
            break
    priors = post.mean(axis=0)
    conf = np.zeros((m, k, k))
    np.add.at(conf, (a, slice(None), c), post[i])  # type: ignore[arg-type]
    conf = np.clip(conf, EPS, None)
    conf /= conf.sum(axis=2, keepdims=True)
    return DawidSkeneResult(items, classes, anns, post, priors, conf, it, converged, loglik)


def rater_report(
    df: pl.DataFrame,
    consensus: pl.DataFrame,
    *,
    item: str,
    annotator: str,
    label: str,
    gold: str | None = None,
    ds: DawidSkeneResult | None = None,
) -> pl.DataFrame:
    """Per rater: annotations, agreement with the consensus label, gold items and accuracy, and
    (with a Dawid-Skene fit) the estimated accuracy."""
    cons = consensus.select(pl.col(item), pl.col(label).alias("_consensus"))
    data = df.filter(pl.col(label).is_not_null()).join(cons, on=item, how="left")
    same = pl.col(label).cast(pl.String) == pl.col("_consensus").cast(pl.String)
    aggs = [
        pl.len().alias("annotations"),
        same.mean().alias("agreement_with_consensus"),
    ]
    if gold is not None:
        on_gold = pl.col(gold).is_not_null()
        hit = pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String)
        aggs += [
            on_gold.sum().cast(pl.Int64).alias("gold_items"),
            (hit & on_gold).sum().cast(pl.Int64).alias("gold_correct"),
        ]
    table = data.group_by(annotator).agg(aggs).with_columns(pl.col(annotator).cast(pl.String))
    if gold is not None:
        table = table.with_columns(
            pl.when(pl.col("gold_items") > 0)
            .then(pl.col("gold_correct") / pl.col("gold_items"))
            .otherwise(None)
            .alias("gold_accuracy")
        )
    if ds is not None:
        est = pl.DataFrame(
            {annotator: [str(x) for x in ds.annotators], "estimated_accuracy": ds.rater_accuracy()}
        )
        table = table.join(est, on=annotator, how="left")
    return table.rename({annotator: "annotator"} if annotator != "annotator" else {}).sort(
        "annotator"
    )
