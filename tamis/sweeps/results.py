"""Where a sweep's results are kept: `runs/sweeps/<id>/result.json` in the store, a catalog row
per sweep and per cell, and loading a saved result back.

    from tamis.sweeps import run_sweep, load_sweep_result, render_sweep_table
    result = run_sweep("label_noise", store=Store(".tamis"), jobs=2)
    rich.print(render_sweep_table(load_sweep_result(store, "sweep/label_noise")))
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, cast

from tamis.pipelines.store import Store, now, write_json_atomic
from tamis.sweeps.cell import cell_dir
from tamis.sweeps.documents import CellResult, SweepResult
from tamis.sweeps.plan import Plan


def sweep_dir(store: Store, sweep_id: str) -> Path:
    return store.runs_dir / "sweeps" / sweep_id


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def save_result(out: Path, result: SweepResult) -> SweepResult:
    """Write `result.json` (non-finite floats as null) atomically; returns what was written."""
    cleaned = cast(SweepResult, _clean(result))
    write_json_atomic(out / "result.json", cleaned)
    return cleaned


def record_sweep(
    store: Store,
    plan: Plan,
    started: str,
    status: str,
    info: dict[str, Any],
    results: list[CellResult],
) -> None:
    """The sweep's catalog row (kind `sweep`) and one row per finished cell, queued for the
    catalog in one file (opening the DuckDB file would cost 15-30 ms; see `Store.queue_runs`)."""
    sweep_row = {
        "id": f"sweep-{plan.sweep_id}",
        "kind": "sweep",
        "name": plan.spec.name,
        "started_at": started,
        "finished_at": now(),
        "status": status,
        "info": info,
    }
    rows = [_cell_row(store, plan, res) for res in {r["key"]: r for r in results}.values()]
    store.queue_runs([*rows, sweep_row])


def _cell_row(store: Store, plan: Plan, res: CellResult) -> dict[str, Any]:
    return {
        "id": f"cell-{res['key'][:24]}",
        "kind": "sweep_cell",
        "name": f"{plan.spec.name}/{res['version']}/seed{res['seed']}",
        "started_at": res.get("started_at"),
        "finished_at": res.get("finished_at"),
        "status": "ok",
        "info": {
            "key": res["key"],
            "sweep": plan.sweep_id,
            "data_id": res["data_id"],
            "test_id": res.get("test_id"),
            "recipe": res["recipe"],
            "metrics": res["metrics"],
            "seconds": res.get("seconds"),
            "path": str(cell_dir(store.root, res["key"]) / "result.json"),
        },
    }


def load_sweep_result(store: Store, ref: str) -> SweepResult | None:
    """A saved sweep by id, id prefix, `sweep/NAME` or NAME (latest run); None if none matches."""
    ref = ref.strip()
    name = ref.split("/", 1)[1] if ref.startswith("sweep/") else ref
    sweep_id = ref[len("sweep-") :] if ref.startswith("sweep-") else ref
    for row in store.sweep_runs(name, sweep_id):
        path = Path(row["info"].get("path", ""))
        if path.is_file():
            with open(path) as fh:
                data: SweepResult = json.load(fh)
            _merge_tracking(data, path.parent / "tracking.json")
            return data
    return None


def _merge_tracking(data: SweepResult, outcome: Path) -> None:
    """What the MLflow logging process reported after the sweep returned (it may outlive it)."""
    track = data.get("tracking")
    if not track or not track.get("pending") or not outcome.is_file():
        return
    try:
        said = json.loads(outcome.read_text())
    except (OSError, ValueError):
        return
    track.update(parent_run_id=said.get("parent_id"), error=said.get("error"), pending=False)
