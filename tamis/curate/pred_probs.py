"""Out-of-fold predicted probabilities: the model half of confident learning.

Every row gets a probability vector from a model that never saw it: K-fold cross-validation
(stratified, shuffled with the seed, rows dealt to folds in an order that follows their content,
not their position) of the default model of `label_features`, or of embeddings + logistic
regression, or a precomputed list column (`pred_probs`). `label_issues` and `datalab` share it
through `LabelModelConfig`, the params that say how the probabilities are made.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.label_features import (
    ModelName,
    embed_texts,
    feature_frame,
    make_model,
    resolve_features,
)
from tamis.errors import DataError
from tamis.tabular import make_classifier


class LabelModelConfig(Config):
    """How the out-of-fold class probabilities are made (shared by label_issues and datalab)."""

    label: str | None = Field(default=None, description="the label column")
    features: list[str] | None = Field(
        default=None,
        description="feature columns (default: all but the label; none when `text` is set)",
    )
    text: str | None = Field(
        default=None,
        description="a text column (TF-IDF + logistic regression; datalab's neighbours: TF-IDF"
        " reduced by truncated SVD)",
    )
    pred_probs: str | None = Field(
        default=None,
        description="a list column of precomputed out-of-fold class probabilities (sorted class"
        " order); no model is fitted then",
    )
    model: ModelName = Field(
        default="auto", description="auto = logistic regression; gbm = histogram gradient boosting"
    )
    embedding_model: str | None = Field(
        default=None,
        description="local (sentence-)transformer directory to embed `text` with (tamis[train])",
    )
    folds: int = Field(
        default=5, ge=2, description="cross-validation folds (reduced for tiny classes)"
    )


def compute_pred_probs(
    df: pl.DataFrame,
    config: LabelModelConfig,
    *,
    y: np.ndarray,
    n_classes: int,
    seed: int = 0,
    n_jobs: int | None = None,
    blas_threads: int | None = 1,
    progress: Callable[[str], None] | None = None,
    exclude: tuple[str, ...] = (),
    class_names: list[str] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Out-of-fold predicted probabilities `(n, k)` and a description of how they were made.

    `class_names` (the label values, in code order) name the classes in errors and warnings.
    """
    say = progress or (lambda _msg: None)
    label = str(config.label)
    info: dict[str, Any] = {"warnings": []}
    if config.pred_probs is not None:
        info["model"] = f"precomputed column '{config.pred_probs}'"
        info["folds"] = None
        return pred_probs_from_column(df, config.pred_probs, n_classes), info
    names = class_names if class_names is not None else [str(i) for i in range(n_classes)]
    counts = {str(names[i]): int((y == i).sum()) for i in range(n_classes)}
    folds, warns = choose_folds(counts, config.folds, label=label)
    info["warnings"] += warns
    info["folds"] = folds
    if config.embedding_model is not None:
        x, used, estimator = _embedding_model(df, config, seed=seed, say=say)
        info["model"] = f"embeddings({config.embedding_model}) + logistic regression"
    else:
        spec = resolve_features(
            df, label=label, features=config.features, text=config.text, exclude=exclude
        )
        x = feature_frame(df, spec)
        used = spec.columns
        estimator = make_model(spec, config.model, seed=seed, n_rows=df.height)
        kind = "gbm" if config.model == "gbm" else "logreg"
        info["model"] = (
            "tfidf + logistic regression"
            if spec.text and kind == "logreg"
            else {"logreg": "one-hot + logistic regression", "gbm": "hist gradient boosting"}[kind]
        )
        info["features"] = spec.columns
    say(f"{folds}-fold cross-validation")
    probs = out_of_fold_pred_probs(
        x,
        y,
        estimator,
        folds=folds,
        seed=seed,
        n_jobs=n_jobs,
        blas_threads=blas_threads,
        # folds follow the content of what the model sees, not the row order
        order=canonical_order(df.select(used).with_columns(pl.Series("\0y", y))),
    )
    return probs, info


def _embedding_model(
    df: pl.DataFrame, config: LabelModelConfig, *, seed: int, say: Callable[[str], None]
) -> tuple[Any, list[str], Any]:
    """Embeddings of the text column, the columns used, and a logistic regression."""
    text = config.text
    if text is None:
        raise DataError(
            "embedding_model needs a text column",
            field="text",
            fix="set `text` to the column to embed",
        )
    if text not in df.columns:
        resolve_features(df, label=config.label, features=None, text=text)
    say("embedding texts")
    texts = df.get_column(text).cast(pl.String).fill_null("").to_list()
    x = embed_texts(texts, str(config.embedding_model))
    return x, [text], make_classifier("logreg", seed=seed, max_iter=1000)


def choose_folds(counts: dict[str, int], folds: int, *, label: str) -> tuple[int, list[str]]:
    """Folds reduced to the smallest class size (with a warning); an error below 2 members."""
    warns: list[str] = []
    smallest_class, smallest = min(counts.items(), key=lambda kv: kv[1])
    if smallest < 2:
        raise DataError(
            f"class {smallest_class!r} of '{label}' has {smallest} row; cross-validation needs"
            " at least 2 per class",
            column=label,
            fix="drop or merge the rare classes (e.g. with a filter step) before this step",
        )
    if smallest < folds:
        msg = (
            f"class {smallest_class!r} has only {smallest} rows, fewer than folds={folds}:"
            f" using {smallest} folds"
        )
        warnings.warn(msg, stacklevel=3)
        warns.append(msg)
        folds = smallest
    return folds, warns


def out_of_fold_pred_probs(
    x: Any,
    y: np.ndarray,
    estimator: Any,
    *,
    folds: int,
    seed: int,
    n_jobs: int | None = None,
    blas_threads: int | None = 1,
    order: np.ndarray | None = None,
) -> np.ndarray:
    """K-fold (stratified, shuffled with `seed`) out-of-fold `predict_proba`.

    With `order` (e.g. `canonical_order(df)`), rows are dealt to folds and fitted in that order
    and the probabilities come back in the input's order: the result then does not depend on how
    the input rows were ordered.

    `blas_threads` caps BLAS/OpenMP threads during the fits (None = library default). The fold
    models are small, and multithreaded BLAS inside lbfgs mostly spin-waits: on a busy 2-core
    machine we measured 0.2 s with one thread against 20-70 s with the default.
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if order is not None:
        x = x.iloc[order] if hasattr(x, "iloc") else x[order]
        y = y[order]
    try:
        with threadpool_limits(limits=blas_threads):
            probs = cross_val_predict(estimator, x, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    except ValueError as exc:  # the data cannot be fitted (e.g. a text column with no words)
        raise DataError(
            f"the model could not be fitted on these features: {exc}",
            fix="check the feature/text columns (some fold may hold no usable value), or give"
            " a precomputed `pred_probs` column",
        ) from exc
    probs = np.asarray(probs, dtype=np.float64)
    if order is not None:
        back = np.empty_like(probs)
        back[order] = probs
        probs = back
    return probs


def canonical_order(df: pl.DataFrame) -> np.ndarray:
    """Row positions sorted by a hash of each row's whole content (ties: identical rows).

    Folds dealt in this order do not depend on the input's row order: shuffling the rows of a
    frame moves each row's result with it and changes nothing else.
    """
    hashes = df.hash_rows(seed=0).to_numpy()
    return np.argsort(hashes, kind="stable")


def pred_probs_from_column(df: pl.DataFrame, column: str, n_classes: int) -> np.ndarray:
    """A list/array column of per-class probabilities (sorted class order) as an (n, k) array."""
    if column not in df.columns:
        raise DataError(
            f"pred_probs column '{column}' is not in the data",
            column=column,
            fix="name a list column of per-class probabilities, or leave pred_probs out",
        )
    s = df.get_column(column)
    if not isinstance(s.dtype, (pl.List, pl.Array)) or s.has_nulls():
        raise DataError(
            f"pred_probs column '{column}' must be a non-null list of floats per row (got {s.dtype})",
            column=column,
            fix="store one probability per class, in sorted class order",
        )
    lens = s.list.len() if isinstance(s.dtype, pl.List) else None
    if lens is not None and (lens.min() != n_classes or lens.max() != n_classes):
        raise DataError(
            f"pred_probs rows must have {n_classes} entries (one per class)",
            column=column,
            fix="one probability per class, in sorted class order",
        )
    arr = np.asarray(s.to_list(), dtype=np.float64)
    if arr.shape != (df.height, n_classes) or not np.isfinite(arr).all():
        raise DataError(
            f"pred_probs column '{column}' is not an (n, {n_classes}) array of finite numbers",
            column=column,
            fix="one probability per class, in sorted class order",
        )
    return arr
