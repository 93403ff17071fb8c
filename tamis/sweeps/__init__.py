"""Ablation sweeps: a grid of data versions x a recipe x seeds, with statistics and reports.

Kept light at import time (worker processes import this package before numpy is loaded); the
public functions import their modules on first use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tamis.pipelines.store import Store
    from tamis.sweeps.documents import SweepResult
    from tamis.sweeps.spec import SweepSpec


def run_sweep(
    spec_or_name: SweepSpec | str | Path, store: Store | None = None, **kwargs: Any
) -> SweepResult:
    """Run (or resume) a sweep; see `tamis.sweeps.run.run_sweep`."""
    from tamis.sweeps.run import run_sweep as _run

    return _run(spec_or_name, store, **kwargs)


def load_sweep_result(store: Store, ref: str) -> SweepResult | None:
    """A saved sweep result by id, id prefix, `sweep/NAME` or NAME; None when nothing matches."""
    from tamis.sweeps.results import load_sweep_result as _load

    return _load(store, ref)


def render_sweep_table(result: SweepResult) -> Any:
    """The sweep's summary as a rich Table."""
    from tamis.sweeps.table import render_sweep_table as _render

    return _render(result)


def load_sweep(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """A built-in sweep by name (`label_noise`) or a sweep YAML file, with overrides applied."""
    from tamis.sweeps.spec import load_sweep as _load

    return _load(name_or_path, overrides)


__all__ = ["run_sweep", "load_sweep_result", "render_sweep_table", "load_sweep"]
