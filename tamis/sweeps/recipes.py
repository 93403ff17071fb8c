"""The recipes and their registry: `classifier` over `tamis.train.classifier`, `tstr` over
`tamis.privacy.quality.ml_efficacy`, and the LM recipes (`lm_recipes.py`) over `tamis.train`.

The contract (`Recipe`, `RecipeParams`, `RecipeResult`) is in `recipe.py`. Heavy imports happen
inside `run`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import Field

from tamis.errors import DataError, SpecError, did_you_mean
from tamis.sweeps import lm_recipes
from tamis.sweeps.recipe import Recipe, RecipeParams, RecipeResult, validate_recipe_params
from tamis.train.classifier import ClassifierConfig


class _LabelledRecipe(Recipe):
    """A recipe scored against the labels of the fixed test set: rows whose label is null are
    dropped on both sides first (and counted in the cell's info with the class balance)."""

    def run(
        self, train: pl.DataFrame, test: pl.DataFrame | None, params: Any, seed: int, out_dir: Path
    ) -> RecipeResult:
        assert test is not None
        target = params.target
        train, null_train = drop_null_labels(train, target, "training version")
        test, null_test = drop_null_labels(test, target, "test set")
        result, positive = self.score(train, test, params, seed)
        result.info.update(label_info(train, test, target, null_train, null_test, positive))
        return result

    def score(
        self, train: pl.DataFrame, test: pl.DataFrame, params: Any, seed: int
    ) -> tuple[RecipeResult, Any]:
        """Train on `train`, score on `test` (no null labels left); the result and the positive
        class its figures are of."""
        raise NotImplementedError


# --------------------------------------------------------------------------- classifier
#: the classifier recipe's params are the capability's config (declared once, in tamis.train)
ClassifierParams = ClassifierConfig


class ClassifierRecipe(_LabelledRecipe):
    """Train a tabular or text classifier on each version; score it on the fixed test set."""

    name = "classifier"
    Params = ClassifierParams
    version = 2  # per-example predictions, null labels dropped and counted, average precision
    metrics = ("accuracy", "precision", "recall", "f1", "auc", "average_precision")
    warm = (
        "tamis.train.classifier",
        "sklearn.linear_model",
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.metrics",
    )

    def score(
        self, train: pl.DataFrame, test: pl.DataFrame, params: Any, seed: int
    ) -> tuple[RecipeResult, Any]:
        from tamis.sweeps.scoring import point_metrics
        from tamis.train.classifier import evaluate_classifier, train_classifier

        config: ClassifierConfig = params
        model = train_classifier(train, config, seed=seed)
        out = evaluate_classifier(model, test, config)
        positive = out.get("positive_label")
        preds = _row_predictions(model, test, config, positive)
        metrics = {k: out[k] for k in self.metrics if k in out}
        metrics["average_precision"] = point_metrics(preds)["average_precision"]
        info: dict[str, Any] = {
            k: out[k] for k in ("n_train", "n_test", "positive_label") if k in out
        }
        return RecipeResult(metrics=metrics, info=info, predictions=preds), positive


def _row_predictions(
    model: Any, test: pl.DataFrame, config: ClassifierConfig, positive: Any
) -> Any:
    """The model's scores again, row by row, kept for the paired bootstrap over test rows."""
    import numpy as np

    from tamis.sweeps.predictions import CellPredictions, row_keys

    df = test.to_pandas()
    x = df[config.text_column].fillna("").astype(str) if config.text_column else df
    y = df[config.target].astype(str).str.strip().to_numpy()
    classes = sorted(set(y.tolist()) | {str(c) for c in model.classes_})
    p = model.predict_proba(x)
    proba = np.zeros((len(df), len(classes)))
    for j, c in enumerate(model.classes_):
        proba[:, classes.index(str(c))] = p[:, j]
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    binary = len(set(y.tolist())) == 2 and len(classes) == 2
    return CellPredictions.build(
        row_keys(test), y, pred, proba, classes, positive=positive, names={}, binary=binary
    )


# --------------------------------------------------------------------------- tstr
class TstrParams(RecipeParams):
    target: str = Field(description="the label column")
    model: Literal["gbm", "logreg", "rf"] = Field(default="gbm", description="the TSTR model")
    n_boot: int = Field(default=0, ge=0, description="bootstrap CIs over test rows per cell")


class TstrRecipe(_LabelledRecipe):
    """Train on the version (synthetic or real), test on the fixed real test set (TSTR/TRTR)."""

    name = "tstr"
    Params = TstrParams
    version = 2  # per-example predictions, null labels dropped and counted, average precision
    metrics = ("accuracy", "minority_f1", "auc", "average_precision")
    warm = ("tamis.privacy.quality", "sklearn.ensemble", "sklearn.metrics")

    def score(
        self, train: pl.DataFrame, test: pl.DataFrame, params: Any, seed: int
    ) -> tuple[RecipeResult, Any]:
        from tamis.privacy.quality import ml_efficacy
        from tamis.sweeps.predictions import CellPredictions, row_keys
        from tamis.sweeps.scoring import point_metrics

        out = ml_efficacy(
            train,
            test,
            params.target,
            params.model,
            seed=seed,
            n_boot=params.n_boot,
            predictions=True,
        )
        pr = out.pop("predictions")
        preds = CellPredictions.build(
            row_keys(test),
            pr["y"],
            pr["pred"],
            pr["proba"],
            list(pr["classes"]),
            positive=str(out["minority_class"]),
            names={"minority_f1": "f1"},
            binary=True,  # every figure is of the minority class against the rest
        )
        metrics = {k: out[k] for k in ("accuracy", "minority_f1", "auc")}
        metrics["average_precision"] = point_metrics(preds)["average_precision"]
        info: dict[str, Any] = {k: out[k] for k in ("n_train", "n", "minority_class") if k in out}
        return RecipeResult(metrics=metrics, info=info, predictions=preds), out["minority_class"]


def drop_null_labels(frame: pl.DataFrame, target: str, what: str) -> tuple[pl.DataFrame, int]:
    """Rows whose label is null (or NaN) dropped; returns the frame and how many were dropped.

    A null label is not a class: kept, it would turn a binary task into a hidden 3-class one.
    """
    if target not in frame.columns:
        raise DataError(
            f"label column '{target}' is not in the {what}",
            column=target,
            fix=f"set recipe.params.target to one of: {', '.join(frame.columns)}",
        )
    col = pl.col(target)
    missing = col.is_null()
    if frame.schema[target].is_float():
        missing = missing | col.is_nan()
    n = int(frame.select(missing.sum()).item())
    if n == 0:
        return frame, 0
    kept = frame.filter(~missing)
    if kept.height == 0:
        raise DataError(
            f"every label in column '{target}' of the {what} is null ({n} rows)",
            column=target,
            fix="label the rows, or point the sweep at a version that has labels",
        )
    return kept, n


def _counts(frame: pl.DataFrame, target: str) -> dict[str, int]:
    vals = frame[target].cast(pl.String).str.strip_chars().to_list()
    out: dict[str, int] = {}
    for v in vals:
        out[str(v)] = out.get(str(v), 0) + 1
    return dict(sorted(out.items()))


def label_info(
    train: pl.DataFrame,
    test: pl.DataFrame,
    target: str,
    null_train: int,
    null_test: int,
    positive: Any,
) -> dict[str, Any]:
    """Rows, class balance and null labels dropped, on both sides (shown per version)."""
    return {
        "rows_train": train.height,
        "rows_test": test.height,
        "class_counts_train": _counts(train, target),
        "class_counts_test": _counts(test, target),
        "positive": None if positive is None else str(positive),
        "null_labels_dropped": {"train": null_train, "test": null_test},
    }


def recipes() -> dict[str, type[Recipe]]:
    """Every recipe by name: classifier, tstr and the LM recipes."""
    return {"classifier": ClassifierRecipe, "tstr": TstrRecipe, **lm_recipes.RECIPES}


def get_recipe(name: str, *, file: str | None = None) -> type[Recipe]:
    known = recipes()
    if name not in known:
        raise SpecError(
            f"unknown recipe '{name}'",
            file=file,
            field="recipe.use",
            fix=f"{did_you_mean(name, known, n=2)}recipes: {', '.join(known)}",
        )
    return known[name]


__all__ = [
    "Recipe",
    "RecipeParams",
    "RecipeResult",
    "ClassifierParams",
    "ClassifierRecipe",
    "TstrParams",
    "TstrRecipe",
    "drop_null_labels",
    "label_info",
    "recipes",
    "get_recipe",
    "validate_recipe_params",
]
