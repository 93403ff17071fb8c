"""Run directories and the config fields every method shares.

A run directory holds:

    config.json     method, full config, model id/path, seed, library versions
    data.json       the data version ids (or file paths) the run read
    metrics.json    final figures (with CIs and n) and the per-step history
    model/          the trained model and its tokenizer (LoRA adapters merged in)
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tamis.errors import TamisError
from tamis.safe_yaml import safe_load_yaml

C = TypeVar("C")

RUN_FILE = "config.json"


@dataclass
class RunConfig:
    """Fields every training method shares (each method's config adds its own)."""

    seed: int = field(default=0, metadata={"help": "Seed for data splits, init and sampling."})
    learning_rate: float = field(default=1e-3, metadata={"help": "AdamW learning rate."})
    num_train_epochs: float = field(default=3.0, metadata={"help": "Passes over the train split."})
    per_device_train_batch_size: int = field(default=16, metadata={"help": "Batch size."})
    max_length: int | None = field(
        default=None,
        metadata={
            "help": "Longest prompt + response in tokens: SFT and DPO truncate longer examples "
            "(and drop those left with no response token), the reward trainer drops longer "
            "pairs; evaluation cuts the same way, and the metrics and a warning give the "
            "counts. Default: the 95th percentile of the training split's lengths, capped by "
            "the model's maximum positions (the metrics say which value was used and why)."
        },
    )
    eval_fraction: float = field(
        default=0.2,
        metadata={
            "help": "Share of the data held out for evaluation when no --eval data is given."
        },
    )
    lora: bool = field(default=False, metadata={"help": "Train LoRA adapters (PEFT) instead."})
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.0, metadata={"help": "LoRA dropout (0 = deterministic)."})
    pad_token: str | None = field(
        default=None,
        metadata={"help": "Set the tokenizer's pad token (e.g. its EOS) when it has none."},
    )
    mlflow: bool = field(
        default=False,
        metadata={
            "help": "Log config and metrics to MLflow (MLFLOW_TRACKING_URI or <out>/mlflow.db)."
        },
    )
    tiny_vocab_size: int = field(default=512, metadata={"help": "--model tiny: BPE vocab size."})
    tiny_hidden_size: int = field(default=64, metadata={"help": "--model tiny: model width."})
    tiny_layers: int = field(default=2, metadata={"help": "--model tiny: decoder layers."})


def load_config(cls: type[C], source: str | Path | dict[str, Any] | None, **overrides: Any) -> C:
    """Build the dataclass `cls` from a YAML file or dict, then apply non-None overrides.

    Unknown keys are an error that lists the valid names.
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
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - names)
    if unknown:
        raise TamisError(
            f"unknown config field(s) {unknown} for {cls.__name__}",
            file=where,
            field=unknown[0],
            fix=f"valid fields: {sorted(names)}",
        )
    return cls(**values)


def config_help(cls: type[Any]) -> dict[str, str]:
    """Field name -> help text (what `--help`/docs show)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


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


def write_run(
    out: Path,
    *,
    method: str,
    config: Any,
    model: str,
    data_ids: dict[str, Any],
    metrics: dict[str, Any],
    started: float,
) -> dict[str, Any]:
    """Write config.json, data.json, metrics.json; return the summary the CLI prints."""
    cfg = dataclasses.asdict(config)
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
    return {"method": method, "out": str(out), "model_dir": str(out / "model"), **metrics}


def _flat(prefix: str, value: Any, into: dict[str, float]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, into)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        into[prefix.replace("/", "_")] = float(value)


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
        final: dict[str, float] = {}
        _flat("", {k: v for k, v in metrics.items() if k != "history"}, final)
        mlflow.log_metrics(final)
        for step, row in enumerate(metrics.get("history", [])):
            flat: dict[str, float] = {}
            _flat("", row, flat)
            mlflow.log_metrics(flat, step=int(row.get("step", step)))
