"""Recipes: what a sweep cell trains on a data version, and which figures it reports.

A recipe is a thin adapter over a capability module: `classifier` over `tamis.train.classifier`,
`tstr` over `tamis.privacy.quality.ml_efficacy`, and the LM recipes over `tamis.train.<method>`.
`run(train, test, params, seed, out_dir)` returns metrics (flat floats), optional learning curves
(`{name: [[step, value], ...]}`) and info. Heavy imports happen inside `run`.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tamis.errors import SpecError, StepError


@dataclass
class RecipeResult:
    metrics: dict[str, float | None]
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class RecipeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Recipe:
    name: ClassVar[str] = ""
    Params: ClassVar[type[RecipeParams]] = RecipeParams
    #: bump when results change for the same inputs: finished cells are recomputed
    version: ClassVar[int] = 1
    #: the figures tabulated by default
    metrics: ClassVar[tuple[str, ...]] = ()
    #: does a cell need the sweep's fixed `test:` version?
    needs_test: ClassVar[bool] = True
    #: LM recipes plot learning curves
    has_curves: ClassVar[bool] = False
    #: modules a worker process imports at start-up (overlapping the parent's planning)
    warm: ClassVar[tuple[str, ...]] = ()

    def run(
        self,
        train: pl.DataFrame,
        test: pl.DataFrame | None,
        params: Any,
        seed: int,
        out_dir: Path,
    ) -> RecipeResult:
        raise NotImplementedError


# --------------------------------------------------------------------------- classifier
class ClassifierParams(RecipeParams):
    target: str = Field(default="label", description="the label column")
    text_column: str | None = Field(default=None, description="free-text column (TF-IDF model)")
    features: list[str] | None = Field(default=None, description="feature columns (default all)")
    drop: list[str] = Field(default_factory=list, description="columns never used as features")
    model: Literal["logreg", "gbm"] = Field(default="logreg", description="tabular model")
    C: float = Field(default=1.0, gt=0, description="inverse L2 strength of logistic regression")
    max_iter: int = Field(default=2000, ge=1, description="solver iterations / boosting rounds")
    positive_label: str | None = Field(default=None, description="positive class (binary)")
    max_features: int = Field(default=50_000, ge=1, description="TF-IDF vocabulary size")


class ClassifierRecipe(Recipe):
    """Train a tabular or text classifier on each version; score it on the fixed test set."""

    name = "classifier"
    Params = ClassifierParams
    metrics = ("accuracy", "precision", "recall", "f1", "auc")
    warm = (
        "tamis.train.classifier",
        "sklearn.linear_model",
        "sklearn.compose",
        "sklearn.ensemble",
        "sklearn.metrics",
    )

    def run(
        self, train: pl.DataFrame, test: pl.DataFrame | None, params: Any, seed: int, out_dir: Path
    ) -> RecipeResult:
        from tamis.train.classifier import ClassifierConfig, train_and_evaluate

        assert test is not None
        out = train_and_evaluate(train, test, ClassifierConfig(**params.model_dump()), seed=seed)
        metrics = {k: out[k] for k in self.metrics}
        info: dict[str, Any] = {
            k: out[k] for k in ("n_train", "n_test", "positive_label") if k in out
        }
        return RecipeResult(metrics=metrics, info=info)


# --------------------------------------------------------------------------- tstr
class TstrParams(RecipeParams):
    target: str = Field(description="the label column")
    model: Literal["gbm", "logreg", "rf"] = Field(default="gbm", description="the TSTR model")
    n_boot: int = Field(default=0, ge=0, description="bootstrap CIs over test rows per cell")


class TstrRecipe(Recipe):
    """Train on the version (synthetic or real), test on the fixed real test set (TSTR/TRTR)."""

    name = "tstr"
    Params = TstrParams
    metrics = ("accuracy", "minority_f1", "auc")
    warm = ("tamis.privacy.quality", "sklearn.ensemble", "sklearn.metrics")

    def run(
        self, train: pl.DataFrame, test: pl.DataFrame | None, params: Any, seed: int, out_dir: Path
    ) -> RecipeResult:
        from tamis.privacy.quality import ml_efficacy

        assert test is not None
        out = ml_efficacy(train, test, params.target, params.model, seed=seed, n_boot=params.n_boot)
        return RecipeResult(
            metrics={k: out[k] for k in self.metrics},
            info={k: out[k] for k in ("n_train", "n", "minority_class") if k in out},
        )


def _lm_recipes() -> dict[str, type[Recipe]]:
    try:
        from tamis.pipelines.sweeps import lm_recipes
    except ImportError:  # pragma: no cover - the module ships with tamis
        return {}
    return lm_recipes.RECIPES


def recipes() -> dict[str, type[Recipe]]:
    return {"classifier": ClassifierRecipe, "tstr": TstrRecipe, **_lm_recipes()}


def get_recipe(name: str, *, file: str | None = None) -> type[Recipe]:
    known = recipes()
    if name not in known:
        close = difflib.get_close_matches(name, known, n=2)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise SpecError(
            f"unknown recipe '{name}'",
            file=file,
            field="recipe.use",
            fix=f"{hint}recipes: {', '.join(known)}",
        )
    return known[name]


def validate_recipe_params(
    recipe: type[Recipe], raw: dict[str, Any], *, file: str | None = None, where: str = "recipe"
) -> RecipeParams:
    try:
        return recipe.Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(x) for x in err.get("loc", ()))
        raise SpecError(
            err["msg"],
            file=file,
            field=f"{where}.params.{loc}" if loc else f"{where}.params",
            fix=f"params of recipe '{recipe.name}': {', '.join(recipe.Params.model_fields)}",
        ) from None


def require_columns(frame: pl.DataFrame, columns: list[str], recipe: str, produced_by: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StepError(
            f"recipe '{recipe}' needs column(s) {', '.join(missing)}; the version has "
            f"{', '.join(frame.columns)}",
            column=missing[0],
            fix=f"train on data in that format ({produced_by})",
        )
