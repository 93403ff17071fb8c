"""Fixtures for the training tests: tone preference pairs and small shared trained models.

`tone_pairs` comes from `tamis.curate.preferences` when that module provides it; until then an
equivalent generator here makes the same shape of data: prompt/chosen/rejected where `chosen` is a
concise, friendly answer and `rejected` a verbose, formal one.
"""

from __future__ import annotations

import random
from typing import Any

import polars as pl
import pytest

TOPICS = [
    ("reset my password", "click 'Forgot password' on the login page"),
    ("change my email", "open Settings, then Account, and edit it"),
    ("cancel my order", "go to Orders and press Cancel"),
    ("track my parcel", "use the tracking link in your email"),
    ("get a refund", "reply to your receipt and we'll refund you"),
    ("update my address", "edit it under Profile, then Address"),
    ("delete my account", "go to Settings and pick Delete account"),
    ("contact support", "use the chat button at the bottom right"),
    ("export my data", "press Export under Settings, then Privacy"),
    ("change the language", "pick one under Settings, then Language"),
    ("turn off emails", "untick them under Notifications"),
    ("add a team member", "invite them from the Team page"),
    ("pay by card", "choose Card at checkout"),
    ("find my invoice", "it's under Billing, then Invoices"),
    ("enable two-factor login", "switch it on under Security"),
    ("rename a project", "double-click the project name"),
]
OPENERS = ["Sure!", "Happy to help!", "No problem!", "Of course!", "Easy one!"]
CLOSERS = ["Cheers!", "Hope that helps!", "Enjoy!", ":)", "Have a good one!"]
FORMAL_OPEN = [
    "Dear valued customer, we hereby acknowledge receipt of your inquiry regarding",
    "Pursuant to your correspondence, please be advised that in order to",
    "We wish to formally inform you that, in accordance with established procedures, to",
]
FORMAL_CLOSE = [
    "Should you require any further assistance, please do not hesitate to contact the appropriate department.",
    "We remain at your disposal for any additional clarification you may deem necessary.",
    "Kindly note that this communication constitutes our complete and final response.",
]
ASK = ["How do I {t}?", "Can you tell me how to {t}?", "What's the way to {t}?", "I need to {t}."]


def make_tone_pairs(n: int, noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        topic, how = rng.choice(TOPICS)
        prompt = rng.choice(ASK).format(t=topic)
        chosen = f"{rng.choice(OPENERS)} Just {how}. {rng.choice(CLOSERS)}"
        rejected = (
            f"{rng.choice(FORMAL_OPEN)} {topic}, it is necessary that you {how}. "
            f"{rng.choice(FORMAL_CLOSE)}"
        )
        if rng.random() < noise:
            chosen, rejected = rejected, chosen
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pl.DataFrame(rows)


def _tone_pairs(n: int, noise: float = 0.0, seed: int = 0) -> pl.DataFrame:
    try:  # the preference-pairs engineer's generator, once it lands
        from tamis.curate.preferences import tone_pairs

        return tone_pairs(n, noise=noise, seed=seed)
    except ImportError:
        return make_tone_pairs(n, noise=noise, seed=seed)


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
    return train_reward(tone_train, "tiny", out, RewardRunConfig(num_train_epochs=2), tone_eval)
