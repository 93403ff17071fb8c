"""MLflow tracking of a sweep: one parent run per sweep, one child run per cell.

The default is an embedded local file store (`./mlruns`); pass any MLflow tracking URI instead
(`sqlite:///mlflow.db`, `http://...`). MLflow 3 keeps its file store in maintenance mode and
refuses it unless `MLFLOW_ALLOW_FILE_STORE=true`: tamis sets that for `file:` URIs it is given.
MLflow is optional: without it installed, tracking is skipped with one warning.

Logging runs on a background thread (MLflow's import alone takes about a second), so it overlaps
the cells instead of adding to the sweep's wall time.
"""

from __future__ import annotations

import importlib.util
import os
import queue
import threading
import time
from pathlib import Path
from typing import Any

DEFAULT_URI = "./mlruns"


def normalize_uri(uri: str) -> str:
    if "://" in uri or uri.startswith("file:"):
        return uri
    return Path(uri).resolve().as_uri()


def available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


class Tracker:
    """Queue events from the sweep; a thread writes them to MLflow. `close()` waits for it."""

    def __init__(self, uri: str, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        self.uri = normalize_uri(uri)
        if self.uri.startswith("file:"):
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.experiment = experiment
        self.run_name = run_name
        self.params = params
        self.parent_id: str | None = None
        self.error: str | None = None
        self._q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="tamis-mlflow", daemon=True)
        self._thread.start()

    def cell(self, result: dict[str, Any], cached: bool, data_versions: dict[str, Any]) -> None:
        self._q.put(("cell", (result, cached, data_versions)))

    def finish(self, summary: dict[str, float], status: str = "FINISHED") -> None:
        self._q.put(("finish", (summary, status)))

    def close(self, timeout: float = 120.0) -> None:
        self._q.put(("stop", None))
        self._thread.join(timeout)

    # ------------------------------------------------------------------ background thread
    def _loop(self) -> None:
        try:
            from mlflow.entities import Metric, Param
            from mlflow.tracking import MlflowClient

            client = MlflowClient(tracking_uri=self.uri)
            exp = client.get_experiment_by_name(self.experiment)
            exp_id = exp.experiment_id if exp else client.create_experiment(self.experiment)
            parent = client.create_run(exp_id, run_name=self.run_name, tags={"tamis.kind": "sweep"})
            self.parent_id = parent.info.run_id
            client.log_batch(
                self.parent_id, params=[Param(k, _p(v)) for k, v in self.params.items()]
            )
        except Exception as exc:  # tracking must never break a sweep
            self.error = f"{type(exc).__name__}: {exc}"
            self._drain()
            return
        while True:
            kind, payload = self._q.get()
            if kind == "stop":
                return
            try:
                if kind == "cell":
                    result, cached, versions = payload
                    ts = int(time.time() * 1000)
                    child = client.create_run(
                        exp_id,
                        run_name=f"{result['version']}/seed{result['seed']}",
                        tags={
                            "mlflow.parentRunId": self.parent_id,
                            "tamis.kind": "sweep_cell",
                            "tamis.cached": str(cached).lower(),
                        },
                    )
                    params = {
                        "version": result["version"],
                        "seed": result["seed"],
                        "recipe": result["recipe"],
                        "data_version_id": result["data_id"],
                        "test_version_id": result.get("test_id") or "",
                        "cell_key": result["key"],
                        **{f"data.{k}": v for k, v in versions.items()},
                        **{f"recipe.{k}": v for k, v in result["params"].items()},
                    }
                    metrics = [
                        Metric(k, float(v), ts, 0)
                        for k, v in result["metrics"].items()
                        if isinstance(v, (int, float)) and v == v
                    ]
                    metrics.append(Metric("cell_seconds", float(result["seconds"]), ts, 0))
                    for name, points in (result.get("curves") or {}).items():
                        metrics.extend(
                            Metric(f"curve.{name}", float(y), ts, int(x)) for x, y in points
                        )
                    client.log_batch(
                        child.info.run_id,
                        metrics=metrics,
                        params=[Param(k, _p(v)) for k, v in params.items()],
                    )
                    client.set_terminated(child.info.run_id)
                elif kind == "finish":
                    summary, status = payload
                    ts = int(time.time() * 1000)
                    client.log_batch(
                        self.parent_id,
                        metrics=[
                            Metric(k, float(v), ts, 0)
                            for k, v in summary.items()
                            if isinstance(v, (int, float)) and v == v
                        ],
                    )
                    client.set_terminated(self.parent_id, status=status)
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"

    def _drain(self) -> None:
        while True:
            kind, _ = self._q.get()
            if kind == "stop":
                return


def _p(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."
