"""PPO maths against hand-computed examples: GAE, EOS masking, KL reward, clipped losses."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from tamis.train import ppo_core as core  # noqa: E402


def test_eos_mask_truncates_after_first_eos() -> None:
    eos, pad = 9, 0
    resp = torch.tensor([[5, 6, 9, 7, 9], [5, 6, 7, 8, 4], [9, 3, 3, 3, 3]])
    mask = core.eos_mask(resp, eos)
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert core.apply_mask(resp, mask, pad).tolist() == [
        [5, 6, 9, 0, 0],
        [5, 6, 7, 8, 4],
        [9, 0, 0, 0, 0],
    ]
    assert core.last_index(mask).tolist() == [2, 4, 0]


def test_kl_rewards_k1_penalty_and_score_on_last_real_token() -> None:
    lp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5, -9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    rewards, kl = core.kl_rewards(lp, ref, torch.tensor([2.0]), mask, kl_coef=0.1)
    assert kl[0].tolist() == pytest.approx([0.5, -1.0, 0.0, 0.0])
    # -0.1 * kl per token; the score lands on index 2 (last real token), nothing after EOS
    assert rewards[0].tolist() == pytest.approx([-0.05, 0.1, 2.0, 0.0])


def test_gae_matches_hand_computation() -> None:
    rewards = torch.tensor([[0.0, 0.0, 1.0, 5.0]])
    values = torch.tensor([[0.5, 0.2, 0.4, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the 4th token is after EOS: ignored
    g, lam = 1.0, 0.95
    d2 = 1.0 + 0.0 - 0.4  # episode ends: next value 0
    d1 = 0.0 + g * 0.4 - 0.2
    d0 = 0.0 + g * 0.2 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    adv, ret = core.gae(rewards, values, mask, g, lam)
    assert adv[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert ret[0].tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.4, 0.0])


def test_whiten_uses_real_tokens_only() -> None:
    x = torch.tensor([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
    w = core.whiten(x, mask)
    real = w[mask.bool()]
    assert float(real.mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(real.std()) == pytest.approx(1.0, abs=1e-4)  # unbiased, as in whiten
    assert w[~mask.bool()].tolist() == [0.0, 0.0, 0.0]


def test_policy_loss_clips_ratio() -> None:
    old = torch.zeros(1, 3)
    new = torch.tensor([[math.log(1.5), math.log(0.5), math.log(1.1)]])
    adv = torch.tensor([[1.0, -1.0, 1.0]])
    mask = torch.ones(1, 3)
    loss, clipfrac, approx_kl = core.policy_loss(new, old, adv, mask, cliprange=0.2)
    # token 0: min(1.5, 1.2) * 1 -> 1.2 ; token 1: max over -adv*ratio: -(-1)*0.5=0.5 vs 0.8 -> 0.8
    # token 2: 1.1 (inside the clip range)
    expected = (-1.2 + 0.8 - 1.1) / 3
    assert float(loss) == pytest.approx(expected)
    assert float(clipfrac) == pytest.approx(2 / 3)
    assert float(approx_kl) == pytest.approx(
        0.5 * (math.log(1.5) ** 2 + math.log(0.5) ** 2 + math.log(1.1) ** 2) / 3
    )


def test_value_loss_clips_around_old_values() -> None:
    vpred = torch.tensor([[1.0, 0.0]])
    old = torch.tensor([[0.0, 0.0]])
    returns = torch.tensor([[0.0, 1.0]])
    mask = torch.tensor([[1.0, 1.0]])
    loss, frac = core.value_loss(vpred, old, returns, mask, cliprange_value=0.2)
    # token 0: unclipped (1-0)^2=1, clipped (0.2-0)^2=0.04 -> max 1 ; token 1: both 1
    assert float(loss) == pytest.approx(0.5 * (1.0 + 1.0) / 2)
    assert float(frac) == pytest.approx(0.0)


def test_token_logprobs_apply_temperature() -> None:
    logits = torch.tensor([[[2.0, 0.0]]])
    lp = core.token_logprobs(logits, torch.tensor([[0]]), temperature=2.0)
    assert float(lp) == pytest.approx(math.log(math.e / (math.e + 1)))


def test_adaptive_kl_moves_towards_target() -> None:
    ctl = core.AdaptiveKL(0.1, target=6.0, horizon=100)
    assert ctl.update(12.0, 10) > 0.1  # KL too high: stronger penalty
    ctl2 = core.AdaptiveKL(0.1, target=6.0, horizon=100)
    assert ctl2.update(1.0, 10) < 0.1
