"""Aggregation that weighs raters: Dawid-Skene for class labels, Bradley-Terry for pairwise votes,
and a per-rater report (gold accuracy, agreement with consensus, confusion matrix, drift).

    res = dawid_skene(df, item="item", annotator="annotator", label="label")
    res.labels()            # item -> consensus label (the posterior's argmax)
    res.confusion           # annotators x true class x given class, rows sum to 1
    bt = bradley_terry(votes, left="left", right="right", winner="winner")
    bt.scores               # log-strengths, one per compared thing

Dawid-Skene (Dawid & Skene 1979): EM over a prior `pi` on the true classes and one confusion
matrix per rater `theta[a, t, g] = P(rater a says g | true class t)`; the E step gives each item's
posterior `T[i, t] ~ pi_t * prod_{(i,a,g)} theta[a, t, g]`, the M step re-estimates `pi` as the
mean posterior and `theta[a, t, :]` from the posterior-weighted counts of each rater's answers.
Started from majority-vote shares (as crowd-kit does); entries are floored at 1e-12 before
normalising so a rater never seen on a class does not zero a posterior.

Bradley-Terry (Hunter 2004, MM algorithm): `P(i beats j) = p_i / (p_i + p_j)`, maximum likelihood
by `p_i <- W_i / sum_j n_ij / (p_i + p_j)`. With `prior > 0` every item also plays `prior` virtual
wins and `prior` virtual losses against a reference of strength 1 (a Bayesian-style smoothing that
keeps items that never win or never lose finite); with `prior = 0` the plain MLE is returned
(scaled to geometric mean 1), which only exists when the comparison graph is strongly connected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import StepError

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
    df: pl.DataFrame, item: str, annotator: str, label: str, where: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[Any], list[Any], list[Any]]:
    for role, col in (("item", item), ("annotator", annotator), ("label", label)):
        if col not in df.columns:
            raise StepError(
                f"{role} column '{col}' is not in the data",
                step=where,
                column=col,
                fix=f"set `{role}` to the column holding the {role}",
            )
    data = df.select(item, annotator, label).drop_nulls()
    if data.height == 0:
        raise StepError("no annotations with a label", step=where, column=label)
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
    i, a, c, items, anns, classes = _codes(df, item, annotator, label, "dawid_skene")
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


@dataclass
class BradleyTerryResult:
    names: list[Any]
    strengths: np.ndarray
    wins: np.ndarray
    comparisons: np.ndarray
    n_iter: int
    converged: bool

    @property
    def scores(self) -> np.ndarray:
        """Log-strengths (centred at 0 without a prior)."""
        return np.log(self.strengths)

    def table(self) -> pl.DataFrame:
        order = np.argsort(-self.scores, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(1, len(order) + 1)
        return pl.DataFrame(
            {
                "name": [str(x) for x in self.names],
                "score": self.scores,
                "strength": self.strengths,
                "wins": self.wins.astype(np.int64),
                "comparisons": self.comparisons.astype(np.int64),
                "rank": rank,
            }
        ).sort("rank")


def win_matrix(
    df: pl.DataFrame, *, left: str, right: str, winner: str
) -> tuple[np.ndarray, list[Any], int]:
    """W[i, j] = times i beat j; votes whose winner is neither side are counted and left out."""
    for col in (left, right, winner):
        if col not in df.columns:
            raise StepError(
                f"column '{col}' is not in the data",
                step="bradley_terry",
                column=col,
                fix="set left/right/winner to the columns of the two sides and the vote",
            )
    data = df.select(
        pl.col(left).cast(pl.String), pl.col(right).cast(pl.String), pl.col(winner).cast(pl.String)
    ).drop_nulls()
    ok = (pl.col(winner) == pl.col(left)) | (pl.col(winner) == pl.col(right))
    bad = data.filter(~ok).height
    data = data.filter(ok)
    names = sorted(set(data[left].to_list()) | set(data[right].to_list()))
    pos = {x: n for n, x in enumerate(names)}
    w = np.zeros((len(names), len(names)))
    for lft, rgt, win in data.iter_rows():
        if win == lft:
            w[pos[lft], pos[rgt]] += 1
        else:
            w[pos[rgt], pos[lft]] += 1
    return w, names, bad


def bradley_terry_matrix(
    w: np.ndarray, *, prior: float = 1.0, max_iter: int = 10_000, tol: float = 1e-10
) -> tuple[np.ndarray, int, bool]:
    """Strengths from a win matrix by Hunter's MM updates (see the module docstring)."""
    n_ij = w + w.T
    wins = w.sum(axis=1)
    p = np.ones(w.shape[0])
    converged = False
    it = 0
    for _round in range(max_iter):
        it += 1
        denom = (n_ij / (p[:, None] + p[None, :])).sum(axis=1)
        num = wins.copy()
        if prior > 0:
            num = num + prior
            denom = denom + 2.0 * prior / (p + 1.0)
        new = num / np.maximum(denom, EPS)
        new = np.maximum(new, EPS)
        if prior <= 0:
            new = new / np.exp(np.log(new).mean())
        change = float(np.abs(np.log(new) - np.log(p)).max())
        p = new
        if change < tol:
            converged = True
            break
    return p, it, converged


def bradley_terry(
    df: pl.DataFrame, *, left: str, right: str, winner: str, prior: float = 1.0
) -> BradleyTerryResult:
    """Bradley-Terry strengths of everything compared in `(left, right, winner)` votes."""
    w, names, _bad = win_matrix(df, left=left, right=right, winner=winner)
    if not names:
        raise StepError(
            "no pairwise votes whose winner is one of the two sides", step="bradley_terry"
        )
    p, it, conv = bradley_terry_matrix(w, prior=prior)
    return BradleyTerryResult(names, p, w.sum(axis=1), (w + w.T).sum(axis=1), it, conv)


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


def gold_drift(
    df: pl.DataFrame,
    *,
    annotator: str,
    label: str,
    gold: str,
    time: str | None = None,
    window: str | int = 50,
    min_window_items: int = 10,
    alpha: float = 0.05,
) -> pl.DataFrame:
    """Per rater and time window: accuracy on gold items, against the same rater's other windows.

    A window is flagged as drift when its accuracy is lower than on the rater's other gold items
    by a one-sided Fisher exact test with p below `alpha / (number of the rater's windows)`
    (Bonferroni), and it has at least `min_window_items` gold items. Comparing with the rest,
    not with the first window, keeps one lucky early window from making every later one look
    like drift. Windows: `time` a date/datetime truncated to `window` (e.g. '1w'), a number
    bucketed by integer `window`, or without `time` consecutive blocks of `window` gold items in
    the data's order."""
    from scipy.stats import fisher_exact

    for col in (annotator, label, gold, *([time] if time else [])):
        if col not in df.columns:
            raise StepError(f"column '{col}' is not in the data", step="gold_drift", column=col)
    g = df.filter(pl.col(gold).is_not_null() & pl.col(label).is_not_null())
    if time is None:
        if not isinstance(window, int):
            raise StepError(
                "without `time`, window is a number of gold items", field="window", fix="e.g. 50"
            )
        g = g.with_columns(
            (pl.int_range(pl.len()).over(annotator) // window).cast(pl.String).alias("_w")
        )
    elif g.schema[time].is_temporal():
        g = g.with_columns(pl.col(time).dt.truncate(str(window)).cast(pl.String).alias("_w"))
    elif g.schema[time].is_numeric() and isinstance(window, int):
        g = g.with_columns((pl.col(time).cast(pl.Int64) // window).cast(pl.String).alias("_w"))
    else:
        raise StepError(
            f"time column '{time}' must be a date/datetime (window like '1w') or a number "
            "(an integer window)",
            column=time,
            field="window",
        )
    counts = (
        g.with_columns((pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String)).alias("_ok"))
        .group_by(pl.col(annotator).cast(pl.String).alias("annotator"), "_w")
        .agg(pl.len().alias("n"), pl.col("_ok").sum().cast(pl.Int64).alias("correct"))
        .sort("annotator", "_w")
    )
    rows = []
    for (ann,), part in counts.group_by("annotator", maintain_order=True):
        total_n, total_k = int(part["n"].sum()), int(part["correct"].sum())
        tested = part.filter(pl.col("n") >= min_window_items).height
        for w, n, k in part.select("_w", "n", "correct").iter_rows():
            rest_n, rest_k = total_n - n, total_k - k
            p = float("nan")
            if n >= min_window_items and rest_n > 0:
                p = float(
                    fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="less")[1]
                )
            rows.append(
                {
                    "annotator": ann,
                    "window": w,
                    "n": n,
                    "accuracy": k / n,
                    "rest_n": rest_n,
                    "rest_accuracy": rest_k / rest_n if rest_n else float("nan"),
                    "p_value": p,
                    "drift": bool(p == p and tested and p < alpha / tested),
                }
            )
    schema = {
        "annotator": pl.String,
        "window": pl.String,
        "n": pl.Int64,
        "accuracy": pl.Float64,
        "rest_n": pl.Int64,
        "rest_accuracy": pl.Float64,
        "p_value": pl.Float64,
        "drift": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)
