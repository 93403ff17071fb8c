"""Run directories and the config fields every method shares.

A run directory holds:

    config.json     method, full config, model id/path, seed, library versions
    data.json       the data version ids (or file paths) the run read
    metrics.json    final figures (with CIs and n) and the per-step history
    model/          the trained model and its tokenizer (LoRA adapters merged in)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, TypedDict, TypeVar

from pydantic import Field

from tamis.config import Config, load_config
from tamis.errors import TamisError
from tamis.safe_yaml import safe_load_yaml

RUN_FILE = "config.json"


class RunConfig(Config):
    """Fields every training method shares (each method's config adds its own)."""

    seed: int = Field(default=0, description="Seed for data splits, init and sampling.")
    learning_rate: float = Field(default=1e-3, gt=0, description="AdamW learning rate.")
    num_train_epochs: float = Field(
        default=3.0, gt=0, description="Passes over the train split (sft, rm, dpo)."
    )
    per_device_train_batch_size: int = Field(
        default=16, ge=1, description="Batch size (sft, rm, dpo)."
    )
    max_length: int | None = Field(
        default=None,
        ge=1,
        description="Longest prompt + response in tokens: SFT and DPO truncate longer examples "
        "(and drop those left with no response token), the reward trainer drops longer "
        "pairs; evaluation cuts the same way, and the metrics and a warning give the "
        "counts. Default: the 95th percentile of the training split's lengths, capped by "
        "the model's maximum positions (the metrics say which value was used and why). The run "
        "fails if a split is left empty.",
    )
    eval_fraction: float = Field(
        default=0.2,
        description="Share of the data held out for evaluation when no --eval data is given.",
    )
    lora: bool = Field(default=False, description="Train LoRA adapters (PEFT) instead.")
    lora_r: int = Field(default=8, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(default=16, description="LoRA scaling alpha.")
    lora_dropout: float = Field(
        default=0.0, ge=0, lt=1, description="LoRA dropout (0 = deterministic)."
    )
    pad_token: str | None = Field(
        default=None,
        description="Set the tokenizer's pad token (e.g. its EOS) when it has none.",
    )
    mlflow: bool = Field(
        default=False,
        description="Log config and metrics to MLflow (MLFLOW_TRACKING_URI or <out>/mlflow.db).",
    )
    tiny_vocab_size: int = Field(
        default=512, ge=1, description="--model tiny: BPE vocabulary size."
    )
    tiny_hidden_size: int = Field(default=64, ge=1, description="--model tiny: model width.")
    tiny_layers: int = Field(default=2, ge=1, description="--model tiny: decoder layers.")


R = TypeVar("R", bound=RunConfig)


def load_run_config(
    cls: type[R],
    source: str | Path | dict[str, Any] | None,
    *,
    prefix: str = "config",
    **overrides: Any,
) -> R:
    """Build the config `cls` from a YAML file (`--config`) or dict, then apply non-None overrides.

    Unknown or invalid fields are a `SpecError` that names the file and field and lists the valid
    names (`tamis.config.load_config`); `prefix` is where the fields sit (`config.<field>`).
    """
    values: dict[str, Any] = {}
    where = None
    if isinstance(source, str | Path):
        where = str(source)
        path = Path(source)
        if not path.exists():
            raise TamisError("config file does not exist", file=where, fix="pass an existing YAML")
        loaded = safe_load_yaml(path.read_text(), file=where) or {}
        if not isinstance(loaded, dict):
            raise TamisError("config must be a YAML mapping of field: value", file=where)
        values.update(loaded)
    elif isinstance(source, dict):
        values.update(source)
    values.update({k: v for k, v in overrides.items() if v is not None})
    return load_config(cls, values, file=where, prefix=prefix, what=cls.__name__)


class TrainSummary(TypedDict, total=False):
    """What a training run returns (and the CLI prints): the run's place, then the figures of
    metrics.json (method-specific keys: accuracy, eval_loss, win_rate, ...; `history` is the
    per-step log)."""

    method: str
    out: str
    model_dir: str
    seconds: float
    history: list[dict[str, Any]]


def prepare_run_dir(out: str | Path) -> Path:
    """Create `out`; a previous tamis run there is replaced, any other non-empty dir is refused."""
    path = Path(out)
    if path.exists() and any(path.iterdir()):
        if not (path / RUN_FILE).exists():
            raise TamisError(
                "output directory exists and is not a tamis run directory",
                file=str(path),
                fix="choose a new --out directory or empty this one",
            )
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("tamis", "torch", "transformers", "trl", "peft", "datasets", "tokenizers"):
        with contextlib.suppress(PackageNotFoundError):
            out[name] = version(name)
    return out


def write_json(path: Path, payload: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str))
    os.replace(tmp, path)


def throughput(n_tokens: float, runtime: float) -> dict[str, Any]:
    """train_tokens, train_seconds and tokens_per_second of a trainer's run."""
    return {
        "train_tokens": int(n_tokens),
        "train_seconds": runtime,
        "tokens_per_second": n_tokens / runtime if runtime else None,
    }


def data_ids_of(data: Any, data_ids: dict[str, Any] | None) -> dict[str, Any]:
    """What data.json records: the ids the caller gave, else the path read (None for a frame)."""
    return data_ids or {"data": str(data) if isinstance(data, str | Path) else None}


def write_run(
    out: Path,
    *,
    method: str,
    config: RunConfig,
    model: str,
    data_ids: dict[str, Any],
    metrics: dict[str, Any],
    started: float,
) -> TrainSummary:
    """Write config.json, data.json, metrics.json; return the summary the CLI prints."""
    cfg = config.model_dump()
    checkpoints = out / "checkpoints"  # the trainers' output_dir; tamis saves no checkpoints
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
    write_json(
        out / RUN_FILE,
        {
            "method": method,
            "model": model,
            "seed": cfg.get("seed"),
            "config": cfg,
            "versions": library_versions(),
        },
    )
    write_json(out / "data.json", data_ids)
    metrics = {**metrics, "seconds": round(time.time() - started, 3)}
    write_json(out / "metrics.json", metrics)
    if cfg.get("mlflow"):
        log_mlflow(out, method, cfg, metrics)
    summary: dict[str, Any] = {
        "method": method,
        "out": str(out),
        "model_dir": str(out / "model"),
        **metrics,
    }
    return summary  # type: ignore[return-value]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def flat_numbers(value: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers of a nested dict under dotted keys ('/' becomes '_'), as MLflow logs them."""
    into: dict[str, float] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict):
            into.update(flat_numbers(item, name))
        elif _number(item):
            into[name.replace("/", "_")] = float(item)
    return into


def log_mlflow(out: Path, method: str, cfg: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Log params, final metrics and the history to MLflow (an optional dependency)."""
    try:
        import mlflow
    except ImportError as exc:
        from tamis.errors import MissingDependencyError

        raise MissingDependencyError(
            "mlflow=true needs MLflow", fix="pip install 'tamis[tracking]'"
        ) from exc
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        mlflow.set_tracking_uri(f"sqlite:///{(out / 'mlflow.db').resolve()}")
    mlflow.set_experiment(f"tamis-train-{method}")
    with mlflow.start_run(run_name=out.name):
        mlflow.log_params({k: str(v) for k, v in cfg.items()})
        mlflow.log_metrics(flat_numbers({k: v for k, v in metrics.items() if k != "history"}))
        for step, row in enumerate(metrics.get("history", [])):
            mlflow.log_metrics(flat_numbers(row), step=int(row.get("step", step)))
