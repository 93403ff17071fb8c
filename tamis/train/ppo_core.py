"""The tensor maths of PPO for RLHF, as pure functions (unit-tested one by one).

Shapes: `[B, T]` over response tokens; `mask` is 1 for real tokens (up to and including the first
EOS) and 0 after it. Follows "The N implementation details of RLHF with PPO" (Huang et al., 2024).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def eos_mask(responses: torch.Tensor, eos_id: int) -> torch.Tensor:
    """1 for real tokens (up to and including the first EOS), 0 after it."""
    import torch

    is_eos = responses == eos_id
    # number of EOS strictly before each position
    before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()
    return (before == 0).long()


def apply_mask(responses: torch.Tensor, mask: torch.Tensor, pad_id: int) -> torch.Tensor:
    """Truncate at EOS: every token after the first EOS becomes pad."""
    return responses.masked_fill(mask == 0, pad_id)


def last_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real token per row (0 when a row has none)."""
    return (mask.sum(dim=1).long() - 1).clamp(min=0)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float) -> torch.Tensor:
    """log pi(token) from logits scaled by the same temperature used when sampling."""
    import torch

    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    return logp.gather(-1, tokens[..., None])[..., 0]


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = masked_mean(x, mask)
    n = mask.sum()
    var = masked_mean((x - mean) ** 2, mask)
    return var * n / (n - 1).clamp(min=1)  # unbiased, as in the reference implementation


def whiten(x: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise over real tokens only; padded positions come back as 0."""
    import torch

    mean, var = masked_mean(x, mask), masked_var(x, mask)
    out = (x - mean) * torch.rsqrt(var + 1e-8)
    if not shift_mean:
        out = out + mean
    return out * mask


def kl_rewards(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    scores: torch.Tensor,
    mask: torch.Tensor,
    kl_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards: -kl_coef * k1 KL (log pi - log ref) on real tokens, plus the score at
    the last real token. Returns (rewards, per-token kl)."""
    import torch

    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    idx = last_index(mask)
    rows = torch.arange(rewards.shape[0])
    rewards[rows, idx] += scores * (mask.sum(dim=1) > 0)
    return rewards, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation; the episode ends at the last real token (no bootstrap).

    Returns (advantages, returns), both 0 on padded positions.
    """
    import torch

    rewards, values = rewards * mask, values * mask
    T = rewards.shape[1]
    last = torch.zeros_like(rewards[:, 0])
    adv = torch.zeros_like(rewards)
    for t in reversed(range(T)):
        next_value = values[:, t + 1] if t + 1 < T else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lam * last
        adv[:, t] = last
    adv = adv * mask
    return adv, (adv + values) * mask


def policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    cliprange: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clipped surrogate loss; returns (loss, clip fraction, approx KL old->new)."""
    import torch

    log_ratio = (new_logprobs - old_logprobs) * mask
    ratio = torch.exp(log_ratio)
    loss1 = -advantages * ratio
    loss2 = -advantages * torch.clamp(ratio, 1.0 - cliprange, 1.0 + cliprange)
    loss = masked_mean(torch.max(loss1, loss2), mask)
    clipfrac = masked_mean((loss2 > loss1).float(), mask)
    approx_kl = 0.5 * masked_mean(log_ratio**2, mask)
    return loss, clipfrac, approx_kl


def value_loss(
    vpred: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    cliprange_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss 0.5 * max((v - R)^2, (v_clipped - R)^2); returns (loss, clip fraction)."""
    import torch

    vclipped = old_values + torch.clamp(vpred - old_values, -cliprange_value, cliprange_value)
    l1, l2 = (vpred - returns) ** 2, (vclipped - returns) ** 2
    return 0.5 * masked_mean(torch.max(l1, l2), mask), masked_mean((l2 > l1).float(), mask)


class AdaptiveKL:
    """Ziegler et al. (2019): move kl_coef so the per-sequence KL tracks `target`."""

    def __init__(self, init: float, target: float, horizon: int) -> None:
        self.value, self.target, self.horizon = init, target, horizon

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value
