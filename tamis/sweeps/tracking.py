"""MLflow tracking of a sweep: one parent run per sweep, one child run per cell.

The default is an embedded local file store (`./mlruns`); pass any MLflow tracking URI instead
(`sqlite:///mlflow.db`, `http://...`). MLflow 3 keeps its file store in maintenance mode and
refuses it unless `MLFLOW_ALLOW_FILE_STORE=true`: tamis sets that for `file:` URIs it is given.
MLflow is optional: without it installed, tracking is skipped with one warning.

Logging runs in a separate process (`python -m tamis.sweeps.tracking`) fed JSON lines
on its stdin: MLflow's import alone takes 1.3-1.5 s of pure Python here, which in a thread would
slow the cells down through the GIL; in a process it overlaps them on another core. The process
starts before the sweep plans and imports MLflow at once. At the end the sweep either waits for
it (`close(wait=True)`, the Python API's default) or leaves it to finish on its own, as `git gc
--auto` does (`tamis sweep`): the process runs in its own session, so closing the terminal does
not cut it short, and it writes its outcome (parent run id, error) to `tracking.json` beside the
sweep's `result.json`, where `tamis show` picks it up.
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
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tamis.sweeps.documents import CellResult

DEFAULT_URI = "./mlruns"


def normalize_uri(uri: str) -> str:
    if "://" in uri or uri.startswith("file:"):
        return uri
    return Path(uri).resolve().as_uri()


def available() -> bool:
    return importlib.util.find_spec("mlflow") is not None


class Tracker:
    """Send events to the logging process; `close()` ends them and (optionally) waits.

    Create it early (the process imports MLflow while the sweep plans), then call `start` once
    the sweep's parameters are known.
    """

    def __init__(self, uri: str, defer: float = 0.0) -> None:
        """`defer`: seconds the process waits, unless the sweep ends first, before it imports
        MLflow and logs. A sweep that is not waited for uses 10 s: a short sweep then gets no
        1.5 s burst of CPU beside its cells (on two cores that slows them), a long one still
        appears in MLflow as it goes."""
        self.uri = normalize_uri(uri)
        env = dict(os.environ)
        if self.uri.startswith("file:"):
            env.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        self.parent_id: str | None = None
        self.error: str | None = None
        self.pending = False
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tamis.sweeps.tracking", str(defer)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            text=True,
            start_new_session=True,  # may outlive `tamis sweep`; terminal signals stay with it
        )
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._said: list[dict[str, Any]] = []
        self._writer = threading.Thread(target=self._write, name="tamis-mlflow", daemon=True)
        self._writer.start()
        self._reader = threading.Thread(target=self._read, name="tamis-mlflow-out", daemon=True)
        self._reader.start()

    def start(self, experiment: str, run_name: str, params: dict[str, Any]) -> None:
        self._q.put(
            {
                "kind": "start",
                "uri": self.uri,
                "experiment": experiment,
                "run_name": run_name,
                "params": params,
            }
        )

    def cell(self, result: CellResult, cached: bool) -> None:
        self._q.put({"kind": "cell", "result": result, "cached": cached})

    def finish(
        self, summary: dict[str, float], status: str = "FINISHED", outcome: Path | None = None
    ) -> None:
        """End the parent run; the process writes its outcome to `outcome` (JSON) when done."""
        self._q.put(
            {
                "kind": "finish",
                "summary": summary,
                "status": status,
                "outcome": str(outcome) if outcome else None,
            }
        )

    def close(self, wait: bool = True, timeout: float = 120.0) -> None:
        """Send the last events; with `wait`, also wait for every run to be logged."""
        self._q.put(None)
        self._writer.join(timeout)  # events go to a pipe the process drains at once: quick
        if wait:
            try:
                self._proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self.error = f"tracking process did not finish in {timeout:.0f}s"
            self._reader.join(5.0)
        outcome = self._said[-1] if self._said else {}
        self.parent_id = outcome.get("parent_id")
        self.error = self.error or outcome.get("error")
        self.pending = not outcome.get("done", False)

    def _read(self) -> None:
        assert self._proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            for line in self._proc.stdout:
                with contextlib.suppress(ValueError):
                    self._said.append(json.loads(line))

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


def _say(state: dict[str, Any]) -> None:
    """Tell the sweep (if it still listens) how far logging got."""
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.write(json.dumps(state) + "\n")
        sys.stdout.flush()


def _serve(lines: Any) -> dict[str, Any]:
    """The logging process: read events, write them to MLflow; never raise."""
    state: dict[str, Any] = {"parent_id": None, "error": None, "done": False}
    client: Any = None
    exp_id = None
    outcome: str | None = None
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
                _say(state)
                continue
            if kind == "finish":
                outcome = event.get("outcome")
            if client is None:  # MLflow failed to start: the error is already in `state`
                continue
            if kind == "cell":
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
    state["done"] = True
    if outcome:
        _write_outcome(Path(outcome), state)
    return state


def _write_outcome(path: Path, state: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({**state, "finished_at": time.time()}))
        os.replace(tmp, path)


def _prefetch(stream: Any, ended: threading.Event) -> queue.Queue[str | None]:
    """Drain stdin in a thread from the first moment, so the sweep never blocks on the pipe
    while this process is still importing MLflow; `ended` is set once the sweep has finished."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in stream:
                lines.put(line)
                with contextlib.suppress(ValueError, AttributeError):
                    if json.loads(line).get("kind") == "finish":
                        ended.set()
        lines.put(None)
        ended.set()

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _drain(lines: queue.Queue[str | None]) -> Any:
    while (line := lines.get()) is not None:
        yield line


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
    with contextlib.suppress(OSError):
        os.nice(10)  # background work: cells come first
    sweep_ended = threading.Event()
    pending = _prefetch(sys.stdin, sweep_ended)
    sweep_ended.wait(float(sys.argv[1]) if len(sys.argv) > 1 else 0.0)
    with contextlib.suppress(Exception):  # the import is what takes long: start it early
        import mlflow.tracking  # noqa: F401
    _say(_serve(_drain(pending)))
