"""Choose what to label next: cleanlab's ActiveLab (`cleanlab.multiannotator.
get_active_learning_scores`) over every item, labelled or not.

    out, report = rank_for_labeling(items, annotations, ActiveLearningConfig(features=[...]))
    out, report = rank_for_labeling(items, annotations, probs=["p_ham", "p_spam"])  # fields as keywords

ActiveLab needs the annotations so far (an items x annotators matrix, NaN where an annotator
did not label an item) and a classifier's predicted probabilities: out-of-fold for the labelled
items, from a model fitted on all labelled items for the unlabelled ones. The model is tamis's
default (`label_features.make_model`) trained on the majority-vote labels (ties broken by the
seed), or the caller passes probability columns (`probs`, one per class in sorted class order).

Output: the items with `num_annotations`, `active_learning_score` (cleanlab's score: LOW means
one more label helps most) and `active_learning_rank` (1 = label first; ties by item id), ready
for `tamis annotate export --top N`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config, load_config
from tamis.curate.annotation.columns import require_columns
from tamis.errors import DataError

#: the columns `rank_for_labeling` adds to the items
RANK_COLUMNS: dict[str, pl.DataType] = {
    "num_annotations": pl.Int64(),
    "active_learning_score": pl.Float64(),
    "active_learning_rank": pl.Int64(),
}


class ActiveLearningConfig(Config):
    """Which columns hold items and annotations, and where the class probabilities come from."""

    item: str = Field(default="item", description="the items' id column")
    annotation_item: str = Field(
        default="item", description="the annotations' item column (ids matched as text)"
    )
    annotator: str = Field(default="annotator", description="the annotations' annotator column")
    label: str = Field(default="label", description="the annotations' label column")
    features: list[str] | None = Field(
        default=None, description="item columns for tamis's default model"
    )
    text: str | None = Field(default=None, description="an item text column for the model")
    probs: list[str] | None = Field(
        default=None,
        description="instead of a model: one predicted-probability column per class (sorted)",
    )
    folds: int = Field(default=5, ge=2, description="folds of the out-of-fold model")


def annotation_matrix(
    annotations: pl.DataFrame, items: list[Any], *, item: str, annotator: str, label: str
) -> tuple[np.ndarray, list[Any], list[Any]]:
    """items x annotators matrix of class indices (NaN where missing), classes, annotators."""
    data = annotations.select(item, annotator, label).drop_nulls()
    data = data.unique(subset=[item, annotator], keep="last", maintain_order=True)
    classes = data.get_column(label).unique().sort().to_list()
    anns = data.get_column(annotator).unique().sort().to_list()
    ipos = {x: n for n, x in enumerate(items)}
    apos = {x: n for n, x in enumerate(anns)}
    cpos = {x: n for n, x in enumerate(classes)}
    mat = np.full((len(items), len(anns)), np.nan)
    for it, ann, lab in data.iter_rows():
        if it in ipos:
            mat[ipos[it], apos[ann]] = cpos[lab]
    return mat, classes, anns


def _model_probs(
    items: pl.DataFrame, mat: np.ndarray, k: int, c: ActiveLearningConfig, seed: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Out-of-fold probabilities of tamis's default model (trained on the majority labels) for
    the labelled items, and of the model fitted on all of them for the unlabelled ones."""
    from tamis.curate.label_features import feature_frame, make_model, resolve_features
    from tamis.curate.pred_probs import out_of_fold_pred_probs

    if c.features is None and c.text is None:
        raise DataError(
            "ActiveLab needs a model's probabilities",
            fix="set `features` or `text` (item columns for tamis's default model), or `probs`",
        )
    labelled = (~np.isnan(mat)).sum(axis=1) > 0
    votes = np.zeros((mat.shape[0], k))
    for cls in range(k):
        votes[:, cls] = (mat == cls).sum(axis=1)
    tie = np.random.default_rng(seed).random(votes.shape) * 1e-6
    majority = (votes + tie).argmax(axis=1)
    spec = resolve_features(items, label=None, features=c.features, text=c.text)
    x = feature_frame(items, spec)
    y = majority[labelled]
    if len(np.unique(y)) < k:
        raise DataError(
            "some class is never the majority label of a labelled item",
            fix="label more items of that class, or pass `probs`",
        )
    smallest = int(np.bincount(y, minlength=k).min())
    nf = max(2, min(c.folds, smallest))
    x_lab = x[labelled] if not hasattr(x, "iloc") else x.iloc[np.flatnonzero(labelled)]
    model = make_model(spec, "auto", seed=seed, n_rows=int(labelled.sum()))
    p_lab = out_of_fold_pred_probs(x_lab, y, model, folds=nf, seed=seed)
    p_unl = np.zeros((0, k))
    if (~labelled).any():
        model.fit(x_lab, y)
        x_unl = x.iloc[np.flatnonzero(~labelled)] if hasattr(x, "iloc") else x[~labelled]
        p_unl = model.predict_proba(x_unl)
    return p_lab, p_unl, f"out-of-fold model on {', '.join(spec.columns)} ({nf} folds)"


def _given_probs(
    items: pl.DataFrame, labelled: np.ndarray, probs: list[str], classes: list[Any]
) -> tuple[np.ndarray, np.ndarray, str]:
    if len(probs) != len(classes):
        raise DataError(
            f"{len(probs)} probability columns for {len(classes)} classes "
            f"({', '.join(map(str, classes))})",
            field="probs",
            fix="one column per class, in sorted class order",
        )
    p_all = items.select(probs).to_numpy().astype(np.float64)
    return p_all[labelled], p_all[~labelled], f"given columns {', '.join(probs)}"


def rank_for_labeling(
    items: pl.DataFrame,
    annotations: pl.DataFrame,
    config: ActiveLearningConfig | None = None,
    *,
    seed: int = 0,
    **params: Any,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """ActiveLab scores and ranks for every item.

    `config` (or its fields as `params`): `annotation_item` is the annotations' item column, which
    may differ from the items' `item` (e.g. `item` in a `tamis annotate import` version, `id` in
    the items); ids are matched as text."""
    c = config or load_config(ActiveLearningConfig, params, prefix="rank_for_labeling")
    item = c.item
    require_columns(items, {"item": item}, what="the items")
    require_columns(
        annotations,
        {"annotation_item": c.annotation_item, "annotator": c.annotator, "label": c.label},
        what="the annotations",
    )
    if items.get_column(item).n_unique() != items.height:
        raise DataError(f"item ids in '{item}' are not unique", column=item, fix="dedup first")
    items = items.sort(item)  # results never depend on row order
    ids = items.get_column(item).to_list()
    keyed = annotations.with_columns(pl.col(c.annotation_item).cast(pl.String).alias("_item"))
    mat, classes, anns = annotation_matrix(
        keyed, [str(i) for i in ids], item="_item", annotator=c.annotator, label=c.label
    )
    k = len(classes)
    if k < 2:
        raise DataError("the annotations hold fewer than two classes", column=c.label)
    n_ann = (~np.isnan(mat)).sum(axis=1)
    labelled = n_ann > 0
    if labelled.sum() < 2:
        raise DataError("fewer than two items have a label", fix="label some first")
    if c.probs is not None:
        p_lab, p_unl, note = _given_probs(items, labelled, c.probs, classes)
    else:
        p_lab, p_unl, note = _model_probs(items, mat, k, c, seed)
    from tamis.curate.label_features import import_cleanlab

    import_cleanlab()
    import pandas as pd
    from cleanlab.multiannotator import get_active_learning_scores

    wide = pd.DataFrame(mat[labelled], columns=[str(a) for a in anns])
    # cleanlab breaks majority-vote ties with the global NumPy RNG: seed it for this call only
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        s_lab, s_unl = get_active_learning_scores(
            wide, pred_probs=p_lab, pred_probs_unlabeled=p_unl if len(p_unl) else None
        )
    finally:
        np.random.set_state(state)
    scores = np.empty(len(ids))
    scores[labelled] = s_lab
    if (~labelled).any():
        scores[~labelled] = s_unl
    order = np.lexsort((np.arange(len(ids)), scores))  # items are sorted: ties by item id
    rank = np.empty(len(ids), dtype=np.int64)
    rank[order] = np.arange(1, len(ids) + 1)
    values = (n_ann, scores, rank)
    out = items.with_columns(
        pl.Series(name, v, dtype=dtype)
        for (name, dtype), v in zip(RANK_COLUMNS.items(), values, strict=True)
    ).sort("active_learning_rank")
    report = {
        "items": len(ids),
        "labelled_items": int(labelled.sum()),
        "unlabelled_items": int((~labelled).sum()),
        "annotators": len(anns),
        "classes": [str(c) for c in classes],
        "pred_probs": note,
        "top": out.head(10).select(item, "num_annotations", "active_learning_score").to_dicts(),
    }
    return out, report
