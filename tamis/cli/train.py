"""`tamis train sft|rm|dpo|ppo` and `tamis train show RUN_DIR`.

The CLI parses options, calls `tamis.pipelines.training` (which reads `--data`/`--eval`, dispatches
through the table of methods in `tamis.train.methods` and indexes the run) and prints the run
summary (one JSON document with `--json`).
"""

from __future__ import annotations

import contextlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tamis.cli.render import (
    DEFAULT_STORE,
    cli_errors,
    emit,
    err,
    json_option,
    store_option,
)
from tamis.render import render_report

if TYPE_CHECKING:
    from tamis.pipelines.training import TrainRequest

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
RewardOpt = Annotated[
    str, typer.Option("--reward-model", help="reward model directory (e.g. a `train rm` run)")
]


ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", help="torch CPU threads (1 is fastest on a busy shared machine)"),
]


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


def _run(request: TrainRequest, as_json: bool) -> None:
    from tamis.pipelines.training import train_on

    show = not as_json and sys.stderr.isatty()
    with (
        _progress(show, f"train {request.method}") as prog,
        contextlib.redirect_stdout(sys.stderr),
    ):
        summary = train_on(request, prog)
    _emit_summary(dict(summary), as_json)


def _emit_summary(summary: dict[str, Any], as_json: bool) -> None:
    def render() -> None:
        render_report({k: v for k, v in summary.items() if k != "history"}, summary["method"])
        err.print(f"run written to {summary['out']}")

    emit(summary, as_json, render)


def _option(name: str, annotation: Any, default: Any = inspect.Parameter.empty) -> Any:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default
    )


#: the options of every `tamis train METHOD`, before and after the method's own
_FIRST = [_option("data", DataOpt), _option("model", ModelOpt), _option("out", OutOpt)]
_COMMON = [_option("config", ConfigOpt, None), _option("lora", LoraOpt, False)]
_LAST = [
    _option("eval_ref", EvalOpt, None),
    _option("seed", SeedOpt, None),
    _option("threads", ThreadsOpt, None),
    _option("store", store_option, DEFAULT_STORE),
    _option("as_json", json_option, False),
]


def _add_command(method: str, doc: str, first: Any = (), common: Any = ()) -> None:
    """Register `tamis train METHOD`: the shared options plus the method's own (`first` right
    after --out, `common` after --lora), all turned into one `TrainRequest`."""

    def command(**options: Any) -> None:
        from tamis.pipelines.training import TrainRequest

        as_json = options.pop("as_json")
        options["eval_data"] = options.pop("eval_ref")
        _run(TrainRequest(method=method, **options), as_json)

    params = [*_FIRST, *first, *_COMMON, *common, *_LAST]
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = command.__qualname__ = method
    command.__doc__ = doc
    train_app.command(method)(cli_errors(command))


_add_command(
    "sft", "Supervised fine-tuning (TRL SFTTrainer) on prompt/completion or messages data."
)
_add_command(
    "rm", "Reward model (TRL RewardTrainer) on preference pairs (prompt, chosen, rejected)."
)
_add_command(
    "dpo",
    "DPO (TRL DPOTrainer, explicit frozen reference) on preference pairs.",
    common=[_option("ref_model", RefOpt, None)],
)
_add_command(
    "ppo",
    "PPO (our implementation) against a frozen reward model, on a prompt column.",
    first=[_option("reward_model", RewardOpt)],
    common=[_option("ref_model", RefOpt, None)],
)


@train_app.command("show")
@cli_errors
def show(
    run: Annotated[Path, typer.Argument(help="a run directory written by `tamis train`")],
    as_json: json_option = False,
) -> None:
    """Show a run: method, config, data version ids and metrics."""
    from tamis.pipelines.training import read_run

    payload = read_run(run)

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
