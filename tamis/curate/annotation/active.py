"""Choose what to label next: cleanlab's ActiveLab (`cleanlab.multiannotator.
get_active_learning_scores`) over every item, labelled or not.

    out, report = rank_for_labeling(items, annotations, item="item", annotator="annotator",
                                    label="label", features=[...])   # or text=..., or probs=[...]

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

from tamis.errors import StepError

WHERE = "active_learning"


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


def rank_for_labeling(
    items: pl.DataFrame,
    annotations: pl.DataFrame,
    *,
    item: str = "item",
    annotator: str = "annotator",
    label: str = "label",
    features: list[str] | None = None,
    text: str | None = None,
    probs: list[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    annotation_item: str | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """ActiveLab scores and ranks for every item. `annotation_item` is the annotations' item
    column when it differs from the items' `item` (e.g. `item` in a `tamis annotate import`
    version, `id` in the items); ids are matched as text."""
    from tamis.curate.label_features import (
        feature_frame,
        import_cleanlab,
        make_model,
        out_of_fold_pred_probs,
        resolve_features,
    )

    ann_item = annotation_item or item
    for frame, cols, what in (
        (items, [item], "items"),
        (annotations, [ann_item, annotator, label], "annotations"),
    ):
        for col in cols:
            if col not in frame.columns:
                raise StepError(
                    f"column '{col}' is not in the {what} (columns: {', '.join(frame.columns[:20])})",
                    step=WHERE,
                    column=col,
                    fix=f"set item/annotator/label to the {what}' columns",
                )
    if items.get_column(item).n_unique() != items.height:
        raise StepError(
            f"item ids in '{item}' are not unique", step=WHERE, column=item, fix="dedup first"
        )
    items = items.sort(item)  # results never depend on row order
    ids = items.get_column(item).to_list()
    keyed = annotations.with_columns(pl.col(ann_item).cast(pl.String).alias("_item"))
    mat, classes, anns = annotation_matrix(
        keyed, [str(i) for i in ids], item="_item", annotator=annotator, label=label
    )
    k = len(classes)
    if k < 2:
        raise StepError("the annotations hold fewer than two classes", step=WHERE, column=label)
    n_ann = (~np.isnan(mat)).sum(axis=1)
    labelled = n_ann > 0
    if labelled.sum() < 2:
        raise StepError("fewer than two items have a label", step=WHERE, fix="label some first")
    if probs is not None:
        if len(probs) != k:
            raise StepError(
                f"{len(probs)} probability columns for {k} classes ({', '.join(map(str, classes))})",
                step=WHERE,
                field="probs",
                fix="one column per class, in sorted class order",
            )
        p_all = items.select(probs).to_numpy().astype(np.float64)
        note = f"given columns {', '.join(probs)}"
        p_lab, p_unl = p_all[labelled], p_all[~labelled]
    else:
        if features is None and text is None:
            raise StepError(
                "ActiveLab needs a model's probabilities",
                step=WHERE,
                fix="set `features` or `text` (item columns for tamis's default model), or `probs`",
            )
        votes = np.zeros((len(ids), k))
        for c in range(k):
            votes[:, c] = (mat == c).sum(axis=1)
        tie = np.random.default_rng(seed).random(votes.shape) * 1e-6
        majority = (votes + tie).argmax(axis=1)
        spec = resolve_features(items, label=None, features=features, text=text, where=WHERE)
        x = feature_frame(items, spec)
        y = majority[labelled]
        present = np.unique(y)
        if len(present) < k:
            raise StepError(
                "some class is never the majority label of a labelled item",
                step=WHERE,
                fix="label more items of that class, or pass `probs`",
            )
        smallest = int(np.bincount(y, minlength=k).min())
        nf = max(2, min(folds, smallest))
        x_lab = x[labelled] if not hasattr(x, "iloc") else x.iloc[np.flatnonzero(labelled)]
        model = make_model(spec, "auto", seed=seed, n_rows=int(labelled.sum()))
        p_lab = out_of_fold_pred_probs(x_lab, y, model, folds=nf, seed=seed)
        p_unl = np.zeros((0, k))
        if (~labelled).any():
            model.fit(x_lab, y)
            x_unl = x.iloc[np.flatnonzero(~labelled)] if hasattr(x, "iloc") else x[~labelled]
            p_unl = model.predict_proba(x_unl)
        note = f"out-of-fold model on {', '.join(spec.columns)} ({nf} folds)"
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
    out = items.with_columns(
        pl.Series("num_annotations", n_ann, dtype=pl.Int64),
        pl.Series("active_learning_score", scores, dtype=pl.Float64),
        pl.Series("active_learning_rank", rank, dtype=pl.Int64),
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
