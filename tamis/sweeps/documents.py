"""The documents a sweep passes between its modules and saves as JSON.

- `CellTask`: one planned cell (what `engine.plan_sweep` makes and a worker process receives);
- `CellResult`: a finished cell, as `runs/cells/<key>/result.json` holds it;
- `TableRow`: one (version, metric) row of the summary table, with its CI and delta;
- `SweepResult`: the whole sweep, as `runs/sweeps/<id>/result.json` holds it and
  `run_sweep` / `load_sweep_result` return it (read by the report, the table and the CLI).

They are typed dicts: the JSON on disk is exactly the dict, and a result saved by an earlier
version of tamis loads as the same type. This module imports nothing heavy (workers import it).
"""

from __future__ import annotations

from typing import Any, TypedDict


class _Cell(TypedDict):
    #: hash of data, test, recipe + code version, params and seed
    key: str
    version: str
    seed: int
    recipe: str
    params: dict[str, Any]
    data_id: str
    test_id: str | None


class CellTask(_Cell):
    """A planned cell, and the store and thread cap of the process that runs it."""

    store: str
    threads: int


class _CellCore(_Cell):
    #: flat figures (None where undefined)
    metrics: dict[str, float | None]
    #: name -> [[step, value], ...] (LM recipes)
    curves: dict[str, list[list[float]]]
    info: dict[str, Any]
    #: where the per-example predictions are (`CellPredictions.save`), or None
    predictions: dict[str, Any] | None


class CellResult(_CellCore, total=False):
    """A finished cell (timings and the process that ran it are absent from old results)."""

    started_at: str
    finished_at: str
    read_seconds: float
    fit_seconds: float
    seconds: float
    pid: int


class TableRow(TypedDict, total=False):
    """One row of the summary table; the delta fields only against a baseline."""

    version: str
    metric: str
    n: int
    mean: float | None
    sd: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    n_boot: int
    n_test_rows: int
    n_pairs: int
    delta: float | None
    delta_ci_low: float | None
    delta_ci_high: float | None
    p: float | None
    p_method: str


class _SweepCore(TypedDict):
    sweep_id: str
    name: str
    description: str | None
    recipe: dict[str, Any]
    baseline: str | None
    seeds: list[int]
    metrics: list[str]
    figures: list[str]
    tradeoff: dict[str, Any] | None
    has_curves: bool
    #: version -> ids by seed, rows, class balance, null labels dropped, chain of steps
    versions: dict[str, dict[str, Any]]
    #: rows and class balance of the fixed test set
    test: dict[str, Any] | None
    warnings: list[str]
    n_boot: int
    boot_seed: int
    test_ids: dict[str, str | None]
    table: list[TableRow]
    stats_key: str
    #: every cell, in plan order (a subset of its `CellResult`)
    cells: list[dict[str, Any]]
    per_seed_figures: dict[str, dict[str, dict[str, float | None]]]
    computed: int
    skipped: int
    builds: list[dict[str, Any]]
    created_at: str
    store: str


class SweepResult(_SweepCore, total=False):
    """A sweep's result; `report`, `tracking` and `timings` are added once written."""

    report: dict[str, Any]
    tracking: dict[str, Any]
    timings: dict[str, Any]


__all__ = ["CellTask", "CellResult", "TableRow", "SweepResult"]
