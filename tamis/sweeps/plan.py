"""A sweep's plan: its cells, the data versions they read and the figures of each version.

Made by `engine.plan_sweep`, run by `scheduler.run_cells`; both import it from here, so neither
imports the other's module for its type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tamis.pipelines.hashing import hash_json
from tamis.sweeps.documents import CellTask
from tamis.sweeps.recipe import Recipe
from tamis.sweeps.spec import SweepSpec


@dataclass
class Plan:
    spec: SweepSpec
    recipe: type[Recipe]
    cells: list[CellTask]
    #: version -> seed -> data version id
    data_ids: dict[str, dict[int, str]]
    #: seed -> test version id (None for recipes without a test set)
    test_ids: dict[int, str | None]
    #: version -> figure -> seed -> value, read from each version's audit report
    figures: dict[str, dict[str, dict[int, float | None]]]
    build_seconds: float = 0.0
    plan_seconds: float = 0.0
    builds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def sweep_id(self) -> str:
        """The sweep's identity: a hash of its name, its cells' keys, baseline and figures."""
        return hash_json(
            {
                "name": self.spec.name,
                "cells": sorted(c["key"] for c in self.cells),
                "baseline": self.spec.baseline,
                "figures": self.spec.figures,
            }
        )[:20]
