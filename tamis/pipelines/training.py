"""Training on data versions, as `tamis train` runs it: resolve DATA, train, index the run.

    summary = train_on(TrainRequest(method="rm", data="tone/pairs", model="tiny", out=Path("runs/rm"),
                                    store=Path(".tamis")))

`--data`/`--eval` are read by `read_data` (a store ref or id, or a file or folder); the method
comes from the one table `tamis.train.methods`; a run on a store version is indexed in the store's
catalog (kind `train`) beside the versions it read. `read_run` reads a run directory back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamis.errors import TamisError
from tamis.pipelines.data import Data, read_data
from tamis.train.runs import TrainSummary


@dataclass
class TrainRequest:
    """What `tamis train METHOD` was asked (the CLI's options, parsed)."""

    method: str
    data: str
    model: str
    out: Path
    store: Path
    config: Path | None = None
    lora: bool = False
    eval_data: str | None = None
    seed: int | None = None
    ref_model: str | None = None
    reward_model: str | None = None
    threads: int | None = None


def provenance(data: Data, store: Path) -> dict[str, Any]:
    """What data.json records of a DATA argument: the store version, or the file and its digest."""
    if data.from_store:
        return {"ref": data.ref, "version": data.version, "store": str(store)}
    return {"path": str(data.path), "sha256": data.sha256()}


def train_on(request: TrainRequest, progress: Any = None) -> TrainSummary:
    """Read the data, train the method (`tamis.train.methods`), write the run directory, index a
    run on a store version in the catalog; return the run's summary."""
    from tamis.train.methods import method_config, train

    if request.threads is not None:
        import torch

        torch.set_num_threads(request.threads)
    overrides: dict[str, Any] = {"seed": request.seed, "lora": True if request.lora else None}
    config = method_config(request.method, request.config, **overrides)
    data = read_data(request.data, request.store, what="data")
    evald = None
    if request.eval_data is not None:
        evald = read_data(request.eval_data, request.store, what="eval data")
    ids = {
        "data": provenance(data, request.store),
        "eval": provenance(evald, request.store) if evald is not None else "split from data",
    }
    summary = train(
        request.method,
        data.frame,
        model=request.model,
        out=request.out,
        config=config,
        eval_data=None if evald is None else evald.frame,
        data_ids=ids,
        progress=progress,
        ref_model=request.ref_model,
        reward_model=request.reward_model,
    )
    if data.from_store:
        record_train_run(request.store, request.method, summary, ids)
    return summary


def record_train_run(store: Path, method: str, summary: TrainSummary, ids: dict[str, Any]) -> None:
    """Index the run in the store's catalog (kind `train`) beside the versions it read."""
    import uuid
    from datetime import datetime, timedelta, timezone

    from tamis.pipelines.store import Store

    finished = datetime.now(timezone.utc)
    started = finished - timedelta(seconds=float(summary.get("seconds", 0.0)))
    scalars = {k: v for k, v in summary.items() if k != "history"}
    Store(store).record_run(
        {
            "id": f"train-{method}-{uuid.uuid4().hex[:12]}",
            "kind": "train",
            "name": method,
            "started_at": started.isoformat(timespec="milliseconds"),
            "finished_at": finished.isoformat(timespec="milliseconds"),
            "status": "ok",
            "info": {"out": summary["out"], "data": ids, "metrics": scalars},
        }
    )


def read_run(run: Path) -> dict[str, Any]:
    """The config, data and metrics documents of a finished run directory."""
    files = {name: run / f"{name}.json" for name in ("config", "data", "metrics")}
    if not files["metrics"].exists():
        raise TamisError(
            "not a finished tamis training run (no metrics.json)",
            file=str(run),
            fix="pass the --out directory of a `tamis train` command",
        )
    return {name: json.loads(p.read_text()) for name, p in files.items() if p.exists()}
