"""LM recipes `sft`, `rm`, `dpo`, `ppo`: thin adapters over `tamis.train.<method>`.

Each cell trains one run into the cell's directory (`runs/cells/<key>/work/`), evaluates on the
sweep's `test:` version when given (else the method's own held-out split of the version), and
reports the run's final figures as metrics and its per-step history as learning curves.
Params: `model` (`tiny`, a hub id or a local path), `config` (fields of the method's config,
e.g. `num_train_epochs`), and for `ppo` the `reward_model` path; `keep_model: false`
deletes the trained weights after scoring (sweeps rarely need them, and they are large).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, ClassVar, cast

import polars as pl
from pydantic import Field

from tamis.sweeps.recipe import Recipe, RecipeParams, RecipeResult
from tamis.train.methods import METHODS


class LMParams(RecipeParams):
    model: str = Field(default="tiny", description="`tiny`, a Hugging Face id or a local path")
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="fields of the method's config (tamis train METHOD --config)",
    )
    keep_model: bool = Field(default=False, description="keep the trained weights in the cell dir")


class PPOParams(LMParams):
    reward_model: str = Field(description="path of a trained reward model (e.g. a `rm` run)")
    ref_model: str | None = Field(default=None, description="reference policy (default: model)")


def _scalar(value: Any) -> float | None:
    if isinstance(value, dict) and "value" in value:
        value = value["value"]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def flatten_metrics(summary: dict[str, Any]) -> tuple[dict[str, float | None], dict[str, Any]]:
    """Final figures (numbers, and `{value, ci_low, ci_high}` dicts as their value) + extras."""
    metrics: dict[str, float | None] = {}
    extras: dict[str, Any] = {}
    for key, value in summary.items():
        if key in ("history", "method", "out", "model_dir", "seconds"):
            continue
        x = _scalar(value)
        if x is not None:
            metrics[key] = x
            if isinstance(value, dict):
                extras[key] = value
    return metrics, extras


def curves_of(history: list[dict[str, Any]]) -> dict[str, list[list[float]]]:
    curves: dict[str, list[list[float]]] = {}
    for i, row in enumerate(history or []):
        step = row.get("step", row.get("update", i + 1))
        for key, value in row.items():
            if key in ("step", "update", "episodes", "epoch"):
                continue
            x = _scalar(value)
            if x is not None and step is not None:
                curves.setdefault(key, []).append([float(step), x])
    return curves


class _LMRecipe(Recipe):
    Params: ClassVar[type[RecipeParams]] = LMParams
    needs_test = False
    has_curves = True
    warm = ("torch", "transformers", "trl")
    method: ClassVar[str] = ""  # a name in the table of training methods (tamis.train.methods)

    def _config(self, params: Any, seed: int) -> Any:
        from tamis.train.methods import method_config

        return method_config(
            self.method, {**params.config, "seed": seed}, prefix="recipe.params.config"
        )

    def _train(
        self, train: pl.DataFrame, test: pl.DataFrame | None, params: Any, cfg: Any, out: Path
    ) -> dict[str, Any]:
        from tamis.train.methods import train as train_method

        summary = train_method(
            self.method,
            train,
            model=params.model,
            out=out,
            config=cfg,
            eval_data=test,
            ref_model=getattr(params, "ref_model", None),
            reward_model=getattr(params, "reward_model", None),
        )
        return dict(summary)

    def run(
        self, train: pl.DataFrame, test: pl.DataFrame | None, params: Any, seed: int, out_dir: Path
    ) -> RecipeResult:
        cfg = self._config(params, seed)
        run_dir = out_dir / "run"
        summary = self._train(train, test, params, cfg, run_dir)
        metrics, extras = flatten_metrics(summary)
        if not params.keep_model:
            shutil.rmtree(run_dir / "model", ignore_errors=True)
        return RecipeResult(
            metrics=metrics,
            curves=curves_of(summary.get("history") or []),
            info={"run_dir": str(run_dir), "ci": extras},
        )


#: training method -> what its recipe reports (the figures tabulated by default)
SUMMARIES = {
    "sft": "Supervised fine-tuning (TRL SFTTrainer); eval loss and perplexity.",
    "rm": "Reward model (TRL RewardTrainer); held-out pairwise accuracy and length correlation.",
    "dpo": "DPO (TRL DPOTrainer, explicit reference); held-out reward accuracy, margin, KL.",
    "ppo": "PPO (tamis.train.ppo) against a fixed reward model; score, KL and win rate.",
}
METRICS = {
    "sft": ("eval_loss", "eval_perplexity", "train_loss"),
    "rm": ("accuracy", "mean_margin", "ece", "reward_length_corr"),
    "dpo": ("reward_accuracy", "reward_margin", "kl_to_ref_per_token"),
    "ppo": ("win_rate", "score_last", "kl_last", "eos_rate_last"),
}


def _lm_recipe(name: str) -> type[Recipe]:
    """The recipe of the training method `name` (the recipe and the method share the name)."""
    doc = {"__doc__": SUMMARIES[name]}
    cls = cast("type[_LMRecipe]", type(f"{name.upper()}Recipe", (_LMRecipe,), doc))
    cls.name = cls.method = name
    cls.metrics = METRICS[name]
    cls.Params = PPOParams if METHODS[name].needs_reward_model else LMParams
    return cls


RECIPES: dict[str, type[Recipe]] = {name: _lm_recipe(name) for name in SUMMARIES}
