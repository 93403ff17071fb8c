"""Every YAML a user writes is read by one loader that refuses duplicate keys and alias bombs:
pipelines, sweeps, audit policies and training configs (only pipelines did before)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tamis.errors import SpecError, TamisError
from tamis.privacy.audit.gate import load_policy
from tamis.sweeps.spec import load_sweep
from tamis.train.runs import load_run_config
from tamis.train.sft import SFTRunConfig

BOMB = "\n".join(
    ["a: &a [" + ",".join(['"x"'] * 9) + "]"]
    + [
        f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]"
        for prev, cur in zip("abcdefgh", "bcdefghi", strict=True)
    ]
)


def test_policy_with_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "thresholds:\n  exact_match_rate: {max: 0.05}\n  exact_match_rate: {max: 0.5}\n"
    )
    with pytest.raises(SpecError, match="duplicate key 'exact_match_rate'.*line 2 and line 3"):
        load_policy(policy)
    policy.write_text(BOMB)
    with pytest.raises(SpecError, match="alias bomb"):
        load_policy(policy)


def test_sweep_with_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: s\nseeds: [0]\nseeds: [0, 1, 2]\n")
    with pytest.raises(SpecError, match="duplicate key 'seeds'"):
        load_sweep(sweep)


def test_training_config_with_a_duplicate_key_is_an_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("learning_rate: 0.1\nlearning_rate: 0.001\n")
    with pytest.raises(TamisError, match="duplicate key 'learning_rate'"):
        load_run_config(SFTRunConfig, cfg)
