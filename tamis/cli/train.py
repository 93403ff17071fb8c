"""`tamis train sft|rm|dpo|ppo` and `tamis train show RUN_DIR`.

The CLI resolves `--data`/`--eval` (a store ref or id, or a file path), passes the frames and their
version ids to `tamis.train`, and prints the run summary (one JSON document with `--json`).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from tamis.cli.render import (
    DEFAULT_STORE,
    cli_errors,
    emit,
    err,
    json_option,
    missing_file,
    store_option,
)
from tamis.errors import TamisError
from tamis.render import render_report

train_app = typer.Typer(
    help="Train on data versions: sft, rm (reward model), dpo, ppo. Writes a run directory.",
    no_args_is_help=True,
)

DataOpt = Annotated[
    str,
    typer.Option(
        "--data",
        help="store ref/id (<pipeline>/<step>), a .parquet/.csv/.jsonl file, or a folder "
        "(Parquet files or an hf export)",
    ),
]
ModelOpt = Annotated[
    str, typer.Option("--model", help="hub id, local model directory, or `tiny` (offline, CPU)")
]
OutOpt = Annotated[Path, typer.Option("--out", help="run directory to write")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="YAML of config fields (see docs/train.md)")
]
LoraOpt = Annotated[bool, typer.Option("--lora", help="train LoRA adapters (PEFT)")]
EvalOpt = Annotated[
    str | None, typer.Option("--eval", help="held-out data ref/path (default: split --data)")
]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="seed (overrides the config)")]
RefOpt = Annotated[
    str | None, typer.Option("--ref-model", help="frozen reference model (default: the start)")
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch CPU threads (1 is fastest on a busy shared machine)"),
]


def _resolve(ref: str, store: Path, what: str) -> tuple[Any, dict[str, Any]]:
    """(frame, provenance) for a file path or a store ref/id."""
    import polars as pl

    from tamis.train.data import load_frame

    path = Path(ref)
    if path.exists():
        from tamis.pipelines.hashing import hash_file, hash_files

        if path.is_file():
            digest = hash_file(path)
        else:  # a folder (Parquet files or an hf export): names and contents of its files
            digest = hash_files([p for p in path.rglob("*") if p.is_file()])
        return load_frame(path, what=what), {"path": str(path.resolve()), "sha256": digest}
    if path.suffix in (".parquet", ".csv", ".jsonl", ".json", ".ndjson"):
        raise missing_file(what, ref)
    from tamis.pipelines.store import Store

    st = Store(store)
    version = st.resolve(ref)
    frame: pl.DataFrame = st.read(ref)
    return frame, {"ref": ref, "version": version, "store": str(store)}


@contextlib.contextmanager
def _progress(enabled: bool, label: str) -> Iterator[Callable[..., None] | None]:
    """A rich progress bar on stderr; the callable takes (step, total, row)."""
    if not enabled:
        yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=err,
    ) as bar:
        task = bar.add_task(label, total=None, info="")

        def update(step: int, total: int, row: dict[str, Any] | None = None) -> None:
            info = ""
            if row:
                key = next((k for k in ("score", "loss") if k in row), None)
                info = f"{key} {row[key]:.3f}" if key else ""
            bar.update(task, completed=step, total=total, info=info)

        yield update


def _run(
    method: str,
    data: str,
    model: str,
    out: Path,
    config: Path | None,
    lora: bool,
    eval_ref: str | None,
    seed: int | None,
    store: Path,
    as_json: bool,
    threads: int | None,
    **extra: Any,
) -> None:
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    frame, prov = _resolve(data, store, "data")
    eval_frame, eval_prov = (None, None)
    if eval_ref is not None:
        eval_frame, eval_prov = _resolve(eval_ref, store, "eval data")
    ids = {"data": prov, "eval": eval_prov or "split from data"}
    overrides = {"seed": seed, "lora": True if lora else None}
    show = not as_json and sys.stderr.isatty()
    with _progress(show, f"train {method}") as prog, contextlib.redirect_stdout(sys.stderr):
        if method == "sft":
            from tamis.train.sft import SFTRunConfig, train_sft

            summary = train_sft(
                frame, model, out, _cfg(SFTRunConfig, config, overrides), eval_frame, ids, prog
            )
        elif method == "rm":
            from tamis.train.reward import RewardRunConfig, train_reward

            summary = train_reward(
                frame, model, out, _cfg(RewardRunConfig, config, overrides), eval_frame, ids, prog
            )
        elif method == "dpo":
            from tamis.train.dpo import DPORunConfig, train_dpo

            summary = train_dpo(
                frame,
                model,
                out,
                _cfg(DPORunConfig, config, overrides),
                eval_frame,
                extra.get("ref_model"),
                ids,
                prog,
            )
        else:
            from tamis.train.ppo import PPORunConfig, train_ppo

            summary = train_ppo(
                frame,
                model,
                extra["reward_model"],
                out,
                _cfg(PPORunConfig, config, overrides),
                eval_frame,
                extra.get("ref_model"),
                ids,
                prog,
            )
    if isinstance(prov, dict) and "version" in prov:
        _record(store, method, summary, ids)
    _emit_summary(summary, as_json)


def _record(store: Path, method: str, summary: dict[str, Any], ids: dict[str, Any]) -> None:
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


def _cfg(cls: Any, config: Path | None, overrides: dict[str, Any]) -> Any:
    from tamis.train.runs import load_config

    return load_config(cls, config, **overrides)


def _emit_summary(summary: dict[str, Any], as_json: bool) -> None:
    def render() -> None:
        render_report({k: v for k, v in summary.items() if k != "history"}, summary["method"])
        err.print(f"run written to {summary['out']}")

    emit(summary, as_json, render)


def _add_command(method: str, doc: str) -> None:
    """Register `tamis train METHOD` for a method with no options beyond the common ones."""

    def command(
        data: DataOpt,
        model: ModelOpt,
        out: OutOpt,
        config: ConfigOpt = None,
        lora: LoraOpt = False,
        eval_ref: EvalOpt = None,
        seed: SeedOpt = None,
        threads: ThreadsOpt = None,
        store: store_option = DEFAULT_STORE,
        as_json: json_option = False,
    ) -> None:
        _run(method, data, model, out, config, lora, eval_ref, seed, store, as_json, threads)

    command.__name__ = command.__qualname__ = method
    command.__doc__ = doc
    train_app.command(method)(cli_errors(command))


_add_command(
    "sft", "Supervised fine-tuning (TRL SFTTrainer) on prompt/completion or messages data."
)
_add_command(
    "rm", "Reward model (TRL RewardTrainer) on preference pairs (prompt, chosen, rejected)."
)


@train_app.command("dpo")
@cli_errors
def dpo(
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    config: ConfigOpt = None,
    lora: LoraOpt = False,
    ref_model: RefOpt = None,
    eval_ref: EvalOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    store: store_option = DEFAULT_STORE,
    as_json: json_option = False,
) -> None:
    """DPO (TRL DPOTrainer, explicit frozen reference) on preference pairs."""
    _run(
        "dpo", data, model, out, config, lora, eval_ref, seed, store, as_json, threads,
        ref_model=ref_model,
    )  # fmt: skip


@train_app.command("ppo")
@cli_errors
def ppo(
    data: DataOpt,
    model: ModelOpt,
    out: OutOpt,
    reward_model: Annotated[
        str, typer.Option("--reward-model", help="reward model directory (e.g. a `train rm` run)")
    ],
    config: ConfigOpt = None,
    lora: LoraOpt = False,
    ref_model: RefOpt = None,
    eval_ref: EvalOpt = None,
    seed: SeedOpt = None,
    threads: ThreadsOpt = None,
    store: store_option = DEFAULT_STORE,
    as_json: json_option = False,
) -> None:
    """PPO (our implementation) against a frozen reward model, on a prompt column."""
    rm_path = Path(reward_model)
    if (rm_path / "model" / "config.json").exists():  # a `tamis train rm` run directory
        reward_model = str(rm_path / "model")
    _run(
        "ppo", data, model, out, config, lora, eval_ref, seed, store, as_json, threads,
        reward_model=reward_model, ref_model=ref_model,
    )  # fmt: skip


@train_app.command("show")
@cli_errors
def show(
    run: Annotated[Path, typer.Argument(help="a run directory written by `tamis train`")],
    as_json: json_option = False,
) -> None:
    """Show a run: method, config, data version ids and metrics."""
    files = {name: run / f"{name}.json" for name in ("config", "data", "metrics")}
    if not files["metrics"].exists():
        raise TamisError(
            "not a finished tamis training run (no metrics.json)",
            file=str(run),
            fix="pass the --out directory of a `tamis train` command",
        )
    payload = {name: json.loads(p.read_text()) for name, p in files.items() if p.exists()}

    def render() -> None:
        metrics = {k: v for k, v in payload["metrics"].items() if k != "history"}
        render_report(
            {"method": payload.get("config", {}).get("method"), "data": payload.get("data"),
             **metrics},
            str(run),
        )  # fmt: skip

    emit(payload, as_json, render)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
