"""What every training method shares: its arguments (`TrainJob`) and its public run function.

Each method module writes only its own part, `fit(job, cfg) -> TrainSummary`, and makes its
public function with `run_function`:

    train_sft = run_function("sft", SFTRunConfig, _fit)
    summary = train_sft(df, model="tiny", out="runs/sft", config=SFTRunConfig(num_train_epochs=2))

so the signature, the offline switch, loading and splitting the data and writing the run
directory are written once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import TamisError
from tamis.train.data import load_frame, split_eval
from tamis.train.offline import offline_if_local
from tamis.train.runs import RunConfig, TrainSummary, data_ids_of, write_run


@dataclass(frozen=True)
class TrainJob:
    """The arguments of one training run (see `run_function` for their meaning)."""

    data: Any
    model: str
    out: str | Path
    eval_data: Any = None
    ref_model: str | None = None
    reward_model: str | None = None
    data_ids: dict[str, Any] | None = None
    progress: Any = None
    started: float = field(default_factory=time.time, init=False)

    def split(
        self,
        prepare: Callable[[pl.DataFrame], tuple[pl.DataFrame, list[str]]],
        cfg: RunConfig,
        method: str,
    ) -> tuple[pl.DataFrame, pl.DataFrame, list[str]]:
        """(train, eval, columns): the data and eval data read and prepared, or eval split off."""
        df, cols = prepare(load_frame(self.data))
        evald = None
        if self.eval_data is not None:
            evald = prepare(load_frame(self.eval_data, what="eval data"))[0]
        train, evald = split_eval(df, evald, cfg.eval_fraction, cfg.seed, method)
        return train, evald, cols

    def finish(
        self, run: Path, method: str, cfg: RunConfig, metrics: dict[str, Any], **ids: Any
    ) -> TrainSummary:
        """Write the run directory's records (data ids plus `ids`); return the summary."""
        return write_run(
            run,
            method=method,
            config=cfg,
            model=self.model,
            data_ids={**data_ids_of(self.data, self.data_ids), **ids},
            metrics=metrics,
            started=self.started,
        )


def run_function(
    method: str,
    config_class: type[RunConfig],
    fit: Callable[[TrainJob, Any], TrainSummary],
    *,
    models: tuple[str, ...] = (),
) -> Callable[..., TrainSummary]:
    """The public `train_<method>(data, model, out, config=None, **options)`.

    `data`: a frame, a file or a directory; `model`: `tiny`, a local directory or a hub id;
    `out`: the run directory; `config`: the method's config (its defaults when None). `options`
    are the other fields of `TrainJob`: `eval_data` (split off `data` when omitted), the extra
    `models` the method loads (`ref_model`, `reward_model`), `data_ids` (what data.json records)
    and `progress`. The run is offline when every model it loads is local (train/offline.py).
    """
    others = {"ref_model", "reward_model"} - set(models)

    def train(
        data: Any, model: str, out: str | Path, config: RunConfig | None = None, **options: Any
    ) -> TrainSummary:
        if others & set(options):
            raise TypeError(f"train_{method}() takes no {', '.join(sorted(others & set(options)))}")
        job = TrainJob(data, model, out, **options)
        if "reward_model" in models and not job.reward_model:
            raise TamisError(
                f"{method} needs a reward model",
                field="reward_model",
                fix="pass a trained reward model (e.g. the directory of a `tamis train rm` run)",
            )
        with offline_if_local(model, *(getattr(job, m) for m in models)):
            return fit(job, config or config_class())

    train.__name__ = train.__qualname__ = f"train_{method}"
    train.__doc__ = fit.__doc__
    return train
