"""Reward model on tone pairs: held-out accuracy bar, calibration and the length probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")


def test_reward_model_separates_tone_pairs(rm_run: dict) -> None:
    acc = rm_run["accuracy"]
    assert acc["value"] >= 0.9, acc  # correctness bar
    assert acc["n"] == 50 and acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    assert rm_run["mean_margin"] > 0
    assert 0.0 <= rm_run["ece"] <= 1.0
    # on tone pairs the chosen replies are shorter: the probe must see a negative correlation
    assert rm_run["reward_length_corr"] < 0


def test_run_directory_holds_config_data_metrics_model(rm_run: dict) -> None:
    out = Path(rm_run["out"])
    config = json.loads((out / "config.json").read_text())
    assert config["method"] == "rm" and config["seed"] == 0 and config["model"] == "tiny"
    assert "trl" in config["versions"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy"] == rm_run["accuracy"]
    assert (out / "data.json").exists()
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(out / "model")
    tok = AutoTokenizer.from_pretrained(out / "model")
    assert model.config.num_labels == 1 and tok.pad_token is not None


def test_reward_lora_keeps_score_head(tone_train, tone_eval, tmp_path: Path) -> None:
    from tamis.train.reward import RewardRunConfig, train_reward

    cfg = RewardRunConfig(lora=True, num_train_epochs=1, learning_rate=5e-3)
    summary = train_reward(
        tone_train.head(48), "tiny", tmp_path / "lora", cfg, eval_data=tone_eval.head(16)
    )
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from tamis.train.reward import pair_metrics

    # the saved (merged) model scores exactly like the evaluated one: the trained score head was
    # kept trainable and saved, not re-initialised on load
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "lora" / "model")
    tok = AutoTokenizer.from_pretrained(tmp_path / "lora" / "model")
    again = pair_metrics(model, tok, tone_eval.head(16), max_length=summary["max_length"])
    assert again["mean_margin"] == pytest.approx(summary["mean_margin"], abs=1e-4)
