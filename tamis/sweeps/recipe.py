"""The recipe contract: what a sweep cell trains on a data version, and which figures it reports.

A recipe is a thin adapter over a capability module. `run(train, test, params, seed, out_dir)`
returns metrics (flat floats), optional learning curves (`{name: [[step, value], ...]}`) and info.
The recipes themselves live in `recipes.py` (classifier, tstr, the registry) and `lm_recipes.py`;
both import this module, never each other's registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl

from tamis.config import Config, load_config


@dataclass
class RecipeResult:
    metrics: dict[str, float | None]
    curves: dict[str, list[list[float]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    #: per-example predictions on the test set (classifier-like recipes; stored by the cell)
    predictions: Any = None


class RecipeParams(Config):
    """Base of a recipe's params (`recipe.params` and `versions.NAME.params` in a sweep YAML)."""


class Recipe:
    name: ClassVar[str] = ""
    #: the params model: a `RecipeParams`, or the config of the capability the recipe wraps
    Params: ClassVar[type[Config]] = RecipeParams
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


def validate_recipe_params(
    recipe: type[Recipe], raw: dict[str, Any], *, file: str | None = None, where: str = "recipe"
) -> Config:
    """The recipe's params from a sweep YAML mapping, or a SpecError naming `<where>.params.X`."""
    return load_config(recipe.Params, raw, file=file, prefix=f"{where}.params", what=recipe.name)
