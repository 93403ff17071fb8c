"""The one table of training methods and the typed configs (no training here: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamis.config import fields_without_help
from tamis.errors import SpecError, TamisError
from tamis.train.methods import (
    METHODS,
    config_tables,
    method,
    method_config,
    reward_model_path,
    train,
)
from tamis.train.runs import RunConfig, flat_numbers


def test_the_cli_and_the_sweeps_use_the_same_methods() -> None:
    from tamis.cli.train import train_app
    from tamis.sweeps.lm_recipes import RECIPES

    commands = {c.name for c in train_app.registered_commands} - {"show"}
    assert commands == set(METHODS) == set(RECIPES)
    assert all(RECIPES[name].method == name for name in METHODS)


@pytest.mark.parametrize("name", list(METHODS))
def test_every_config_field_has_help_and_defaults_validate(name: str) -> None:
    cls = METHODS[name].config_class()
    assert issubclass(cls, RunConfig) and fields_without_help(cls) == []
    cfg = method_config(name, {"num_train_epochs": 1}, seed=4, lora=None)
    assert isinstance(cfg, cls) and cfg.seed == 4 and cfg.lora is False
    assert cfg.model_dump()["num_train_epochs"] == 1


def test_config_is_checked_at_construction(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as exc:
        method_config("dpo", {"beta": 0.1, "learning_rate": -1})
    assert exc.value.field == "config.learning_rate"
    (tmp_path / "ppo.yaml").write_text("respone_length: 6\n")
    with pytest.raises(SpecError) as exc:
        method_config("ppo", tmp_path / "ppo.yaml")
    assert exc.value.file == str(tmp_path / "ppo.yaml") and "response_length" in str(exc.value)
    with pytest.raises(SpecError, match="larger than rollout_batch_size") as exc:
        method_config("ppo", {"rollout_batch_size": 8, "mini_batch_size": 16})
    assert exc.value.field == "config.mini_batch_size"
    with pytest.raises(SpecError) as exc:
        method_config("sft", {"bogus": 1}, prefix="recipe.params.config")
    assert exc.value.field == "recipe.params.config.bogus"


def test_unknown_method_and_missing_reward_model(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="unknown training method 'kto'") as exc:
        method("kto")
    assert "sft, rm, dpo, ppo" in str(exc.value)
    with pytest.raises(TamisError, match="ppo needs a reward model"):
        train("ppo", None, model="tiny", out=tmp_path / "o")


def test_a_reward_run_directory_stands_for_its_model(tmp_path: Path) -> None:
    (tmp_path / "rm" / "model").mkdir(parents=True)
    assert reward_model_path(str(tmp_path / "rm")) == str(tmp_path / "rm")
    (tmp_path / "rm" / "model" / "config.json").write_text("{}")
    assert reward_model_path(str(tmp_path / "rm")) == str(tmp_path / "rm" / "model")
    assert reward_model_path("org/name") == "org/name"


def test_flat_numbers_as_mlflow_logs_them() -> None:
    metrics = {"accuracy": {"value": 0.75, "ci_low": 0.5, "n": 8}, "a/b": 2, "ok": True, "s": "x"}
    assert flat_numbers(metrics) == {
        "accuracy.value": 0.75,
        "accuracy.ci_low": 0.5,
        "accuracy.n": 8.0,
        "a_b": 2.0,
    }


def test_docs_show_the_generated_config_tables() -> None:
    """docs/train.md's config tables are generated from the config classes (no hand copy)."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "train.md").read_text()
    assert config_tables() in docs
