"""The one table of training methods: name -> config class, run function, the data it needs.

    from tamis.train.methods import METHODS, train
    summary = train("rm", pairs, model="tiny", out="runs/rm", config={"num_train_epochs": 1})

The CLI (`tamis train METHOD`, through `tamis.pipelines.training`) and the sweeps' LM recipes
both dispatch through `train`, so a method is added here once. Importing this module is cheap:
each method's module (and its config class) loads when the method is used.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tamis.errors import SpecError
from tamis.train.runs import RunConfig, TrainSummary, load_run_config


@dataclass(frozen=True)
class TrainMethod:
    """One training method: where its config and run function live and what it needs."""

    name: str
    module: str
    config_name: str
    function: str
    data: str
    takes_ref_model: bool = False
    needs_reward_model: bool = False

    def config_class(self) -> type[RunConfig]:
        cls: type[RunConfig] = getattr(importlib.import_module(self.module), self.config_name)
        return cls

    def run_function(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)


METHODS: dict[str, TrainMethod] = {
    m.name: m
    for m in (
        TrainMethod(
            "sft",
            "tamis.train.sft",
            "SFTRunConfig",
            "train_sft",
            data="prompt/completion columns or a messages column",
        ),
        TrainMethod(
            "rm",
            "tamis.train.reward",
            "RewardRunConfig",
            "train_reward",
            data="preference pairs: prompt, chosen, rejected",
        ),
        TrainMethod(
            "dpo",
            "tamis.train.dpo",
            "DPORunConfig",
            "train_dpo",
            data="preference pairs: prompt, chosen, rejected",
            takes_ref_model=True,
        ),
        TrainMethod(
            "ppo",
            "tamis.train.ppo",
            "PPORunConfig",
            "train_ppo",
            data="a prompt column (or messages)",
            takes_ref_model=True,
            needs_reward_model=True,
        ),
    )
}


def method(name: str) -> TrainMethod:
    """The method called `name`, or a clear error listing the methods."""
    if name not in METHODS:
        raise SpecError(
            f"unknown training method '{name}'",
            field="method",
            fix=f"choose one of: {', '.join(METHODS)}",
        )
    return METHODS[name]


def method_config(
    name: str,
    source: str | Path | dict[str, Any] | None = None,
    *,
    prefix: str = "config",
    **overrides: Any,
) -> RunConfig:
    """The config of method `name` from a YAML file or dict, with non-None overrides applied
    (a bad field is a `SpecError` naming `<prefix>.<field>`)."""
    return load_run_config(method(name).config_class(), source, prefix=prefix, **overrides)


def config_tables() -> str:
    """The markdown tables of every method's config fields that docs/train.md shows (generated
    from the config classes: the shared `RunConfig`, then what each method adds or changes)."""
    from tamis.config import describe_config

    def cell(value: Any) -> str:
        if value is None:
            return "`null`"
        return f"`{str(value).lower() if isinstance(value, bool) else value}`"

    def table(fields: list[Any]) -> list[str]:
        rows = ["| field | type | default | help |", "|---|---|---|---|"]
        for f in fields:
            kind = f["type"].replace(" | ", " or ")
            doc = f["doc"].replace("|", "/")
            rows.append(f"| `{f['name']}` | {kind} | {cell(f['default'])} | {doc} |")
        return rows

    shared = {f["name"]: f for f in describe_config(RunConfig)}
    lines = ["Shared by every method (`RunConfig`):", "", *table(list(shared.values()))]
    for name, m in METHODS.items():
        cls = m.config_class()
        own = [
            f
            for f in describe_config(cls)
            if f["name"] not in shared or f["default"] != shared[f["name"]]["default"]
        ]
        lines += ["", f"`{name}` (`{cls.__name__}`) adds or changes:", "", *table(own)]
    return "\n".join(lines)


def reward_model_path(reward_model: str) -> str:
    """A `tamis train rm` run directory stands for the model it saved (`<run>/model`)."""
    path = Path(reward_model)
    if (path / "model" / "config.json").exists():
        return str(path / "model")
    return reward_model


def train(
    name: str,
    data: Any,
    *,
    model: str,
    out: str | Path,
    config: RunConfig | dict[str, Any] | None = None,
    eval_data: Any = None,
    data_ids: dict[str, Any] | None = None,
    progress: Any = None,
    ref_model: str | None = None,
    reward_model: str | None = None,
) -> TrainSummary:
    """Train method `name` on `data`; write the run directory `out`; return its summary.

    `config` is the method's config (or a dict of its fields); `ref_model` is used by the
    methods that take one (dpo, ppo); `reward_model` (a model or an `rm` run directory) is
    required by ppo.
    """
    m = method(name)
    cfg = config if isinstance(config, RunConfig) else method_config(name, config)
    extra: dict[str, Any] = {}
    if m.takes_ref_model:
        extra["ref_model"] = ref_model
    if m.needs_reward_model:  # the method's run function says when it is missing
        extra["reward_model"] = reward_model_path(reward_model) if reward_model else None
    run = m.run_function()
    summary: TrainSummary = run(
        data, model, out, cfg, eval_data=eval_data, data_ids=data_ids, progress=progress, **extra
    )
    return summary
