"""Fixtures for the training tests: tone preference pairs and a small shared reward model.

`tone_pairs` (tamis.curate.preferences): prompt/chosen/rejected where `chosen` is a concise,
friendly answer and `rejected` a verbose, formal one.
"""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest


def _tone_pairs(n: int, noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    from tamis.curate.preferences import tone_pairs

    return tone_pairs(n, noise=noise, seed=seed)


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread() -> None:
    """One torch thread: on a shared 2-core machine, 2 threads run ~25x slower (spin-waits)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tone_train() -> pl.DataFrame:
    return _tone_pairs(120, seed=1)


@pytest.fixture(scope="session")
def tone_eval() -> pl.DataFrame:
    return _tone_pairs(50, seed=2)


@pytest.fixture(scope="session")
def rm_run(tone_train: pl.DataFrame, tone_eval: pl.DataFrame, tmp_path_factory: Any) -> dict:
    """One tiny reward model trained on tone pairs, shared by the RM and PPO tests."""
    pytest.importorskip("trl")
    from tamis.train.reward import RewardRunConfig, train_reward

    out = tmp_path_factory.mktemp("rm") / "run"
    # max_length 256 keeps every tone pair whole (the default, the 95th percentile of the
    # training lengths, would drop the longest 5%): the PPO figures below were measured on it
    cfg = RewardRunConfig(num_train_epochs=2, max_length=256)
    return train_reward(tone_train, "tiny", out, cfg, eval_data=tone_eval)
