"""MLflow tracking of a sweep: one parent run per sweep, one child run per cell.

The default is an embedded local file store (`./mlruns`); pass any MLflow tracking URI instead
(`sqlite:///mlflow.db`, `http://...`). MLflow 3 keeps its file store in maintenance mode and
refuses it unless `MLFLOW_ALLOW_FILE_STORE=true`: tamis sets that for `file:` URIs it is given.
MLflow is optional: without it installed, tracking is skipped with one warning.

Logging runs in a separate process (`python -m tamis.pipelines.sweeps.tracking`) fed JSON lines
on its stdin: MLflow's import alone takes a second or more of pure Python, which in a thread
would slow the cells down through the GIL; in a process it overlaps them on another core.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import subprocess
import sys
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
    """Send events to the logging process; `close()` waits for it and reads its outcome."""

    def __init__(self, uri: str, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        self.uri = normalize_uri(uri)
        env = dict(os.environ)
        if self.uri.startswith("file:"):
            env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.parent_id: str | None = None
        self.error: str | None = None
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tamis.pipelines.sweeps.tracking"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._writer = threading.Thread(target=self._write, name="tamis-mlflow", daemon=True)
        self._writer.start()
        self._q.put(
            {
                "kind": "start",
                "uri": self.uri,
                "experiment": experiment,
                "run_name": run_name,
                "params": params,
            }
        )

    def cell(self, result: dict[str, Any], cached: bool) -> None:
        self._q.put({"kind": "cell", "result": result, "cached": cached})

    def finish(self, summary: dict[str, float], status: str = "FINISHED") -> None:
        self._q.put({"kind": "finish", "summary": summary, "status": status})

    def close(self, timeout: float = 120.0) -> None:
        self._q.put(None)
        self._writer.join(timeout)
        try:
            assert self._proc.stdout is not None
            out = self._proc.stdout.read()  # the process answers once its stdin is closed
            self._proc.wait(timeout=timeout)
            outcome = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        except (subprocess.TimeoutExpired, ValueError, OSError) as exc:
            self._proc.kill()
            outcome = {"error": f"tracking process: {type(exc).__name__}: {exc}"}
        self.parent_id = outcome.get("parent_id")
        self.error = outcome.get("error")

    def _write(self) -> None:
        assert self._proc.stdin is not None
        try:
            while True:
                event = self._q.get()
                if event is None:
                    break
                self._proc.stdin.write(json.dumps(event, default=str) + "\n")
                self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass
        finally:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()


def _p(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 500 else text[:497] + "..."


def _serve(lines: Any) -> dict[str, Any]:
    """The logging process: read events, write them to MLflow; never raise."""
    state: dict[str, Any] = {"parent_id": None, "error": None}
    client: Any = None
    exp_id = None
    for line in lines:
        try:
            event = json.loads(line)
            kind = event["kind"]
            if kind == "start":
                from mlflow.entities import Param
                from mlflow.tracking import MlflowClient

                client = MlflowClient(tracking_uri=event["uri"])
                exp = client.get_experiment_by_name(event["experiment"])
                exp_id = exp.experiment_id if exp else client.create_experiment(event["experiment"])
                parent = client.create_run(
                    exp_id, run_name=event["run_name"], tags={"tamis.kind": "sweep"}
                )
                state["parent_id"] = parent.info.run_id
                client.log_batch(
                    state["parent_id"], params=[Param(k, _p(v)) for k, v in event["params"].items()]
                )
            elif client is None:
                continue
            elif kind == "cell":
                _log_cell(client, exp_id, state["parent_id"], event["result"], event["cached"])
            elif kind == "finish":
                from mlflow.entities import Metric

                ts = int(time.time() * 1000)
                metrics = [
                    Metric(k, float(v), ts, 0)
                    for k, v in event["summary"].items()
                    if isinstance(v, (int, float)) and v == v
                ]
                for i in range(0, len(metrics), 900):
                    client.log_batch(state["parent_id"], metrics=metrics[i : i + 900])
                client.set_terminated(state["parent_id"], status=event["status"])
        except Exception as exc:  # tracking must never break a sweep
            state["error"] = f"{type(exc).__name__}: {exc}"
    return state


def _log_cell(
    client: Any, exp_id: Any, parent_id: str, result: dict[str, Any], cached: bool
) -> None:
    from mlflow.entities import Metric, Param

    ts = int(time.time() * 1000)
    child = client.create_run(
        exp_id,
        run_name=f"{result['version']}/seed{result['seed']}",
        tags={
            "mlflow.parentRunId": parent_id,
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
        **{f"recipe.{k}": v for k, v in result["params"].items()},
    }
    metrics = [
        Metric(k, float(v), ts, 0)
        for k, v in result["metrics"].items()
        if isinstance(v, (int, float)) and v == v
    ]
    metrics.append(Metric("cell_seconds", float(result["seconds"]), ts, 0))
    for name, points in (result.get("curves") or {}).items():
        metrics.extend(Metric(f"curve.{name}", float(y), ts, int(x)) for x, y in points)
    client.log_batch(child.info.run_id, params=[Param(k, _p(v)) for k, v in params.items()])
    for i in range(0, len(metrics), 900):
        client.log_batch(child.info.run_id, metrics=metrics[i : i + 900])
    client.set_terminated(child.info.run_id)


if __name__ == "__main__":
    sys.stdout.write(json.dumps(_serve(sys.stdin)) + "\n")
