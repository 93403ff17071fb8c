"""DPO on tone pairs: held-out implicit-reward accuracy bar, margins, KL to the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("trl")

from tamis.train.dpo import DPORunConfig, train_dpo  # noqa: E402


def test_dpo_prefers_chosen_on_held_out_pairs(tone_train, tone_eval, tmp_path: Path) -> None:
    cfg = DPORunConfig(num_train_epochs=1, beta=0.1)
    s = train_dpo(tone_train, "tiny", tmp_path / "dpo", cfg, eval_data=tone_eval)
    assert s["reward_accuracy"]["value"] >= 0.8, s["reward_accuracy"]  # correctness bar
    assert s["reward_margin"] > 0
    assert s["kl_to_ref_per_token"] > 0  # the policy moved away from its frozen reference
    assert s["history"][0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # log 2 at the start
    assert s["tokens_per_second"] > 0
    assert (tmp_path / "dpo" / "model" / "config.json").exists()


def test_dpo_conversational_pairs(tone_eval, tmp_path: Path) -> None:
    from tamis.curate.preferences import tone_pairs

    conv = tone_pairs(40, seed=5, format="conversational")
    cfg = DPORunConfig(num_train_epochs=1, loss_type="ipo")
    s = train_dpo(conv, "tiny", tmp_path / "dpo", cfg, eval_data=conv.head(10))
    assert s["n_train"] == 40 and s["reward_accuracy"]["n"] == 10
