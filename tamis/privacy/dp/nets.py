"""Networks and conditional-vector helpers of DP-CTGAN (CTGAN's architecture, made DP-safe).

- Generator: CTGAN's residual MLP (BatchNorm is fine here: the generator never sees private rows).
- Discriminator: Linear + LeakyReLU (+ optional LayerNorm / Dropout), **no BatchNorm** (it mixes
  rows, so per-sample gradients stop being per-sample), **pac = 1**, and a 1-D output `[B]`
  (a `[B, 1]` output makes Opacus' ghost clipping broadcast its clip factors to `[B, B]`).
- Conditional vectors: a real row's condition is its own category in one column picked at random
  (a function of that row only); a fake row's condition is drawn from released (noisy or uniform)
  frequencies -- never from private rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

Span = tuple[str, int, int, str]


class Residual(nn.Module):
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.fc = nn.Linear(i, o)
        self.bn = nn.BatchNorm1d(o)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([F.relu(self.bn(self.fc(x))), x], dim=1)


class Generator(nn.Module):
    def __init__(self, embedding_dim: int, dims: Sequence[int], data_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = embedding_dim
        for h in dims:
            layers.append(Residual(d, h))
            d += h
        layers.append(nn.Linear(d, data_dim))
        self.seq = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.seq(z)
        return out


class Discriminator(nn.Module):
    """pac = 1 critic with a 1-D output; LayerNorm (per-row) allowed, BatchNorm never."""

    def __init__(
        self, input_dim: int, dims: Sequence[int], dropout: float, layer_norm: bool
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        d = input_dim
        for h in dims:
            layers.append(nn.Linear(d, h))
            if layer_norm:
                layers.append(nn.LayerNorm(h))
            layers.append(nn.LeakyReLU(0.2))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            d = h
        layers.append(nn.Linear(d, 1))
        self.seq = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.seq(x)
        return out.squeeze(-1)  # [B], never [B, 1]


def activate(
    raw: torch.Tensor, spans: Sequence[Span], tau: float = 0.2, hard: bool = False
) -> torch.Tensor:
    """tanh for mode positions, Gumbel-softmax for one-hot blocks (CTGAN's `_apply_activate`)."""
    parts = []
    for _, start, width, act in spans:
        block = raw[:, start : start + width]
        if act == "tanh":
            parts.append(torch.tanh(block))
        else:
            parts.append(F.gumbel_softmax(block, tau=tau, hard=hard))
    return torch.cat(parts, dim=1)


class CondSampler:
    """Draws conditional vectors from released frequencies only (no private row is ever read)."""

    def __init__(self, widths: Sequence[int], freqs: Sequence[Sequence[float]]) -> None:
        self.widths = list(widths)
        self.offsets = (
            np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(int)
            if widths
            else np.zeros(0, int)
        )
        self.dim = int(sum(self.widths))
        self.cdfs = [np.cumsum(np.asarray(f, dtype=np.float64) / np.sum(f)) for f in freqs]

    @property
    def n_columns(self) -> int:
        return len(self.widths)

    def fake(self, batch: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond one-hot [B, dim], global index [B]) for `batch` fake rows."""
        col = rng.integers(0, self.n_columns, size=batch)
        u = rng.random(batch)
        local = np.empty(batch, dtype=np.int64)
        for j, cdf in enumerate(self.cdfs):
            sel = col == j
            local[sel] = np.minimum(np.searchsorted(cdf, u[sel], side="right"), len(cdf) - 1)
        idx = self.offsets[col] + local
        return self.one_hot(idx), torch.from_numpy(idx)

    def real(
        self, row_idx: torch.Tensor, rng: np.random.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each real row conditions on its own category in one column drawn at random."""
        b = row_idx.shape[0]
        col = torch.from_numpy(rng.integers(0, self.n_columns, size=b))
        idx = row_idx[torch.arange(b), col] if b else torch.zeros(0, dtype=torch.long)
        return self.one_hot(idx.numpy()), idx

    def one_hot(self, idx: np.ndarray) -> torch.Tensor:
        out = torch.zeros((len(idx), self.dim))
        if len(idx):
            out[torch.arange(len(idx)), torch.as_tensor(idx)] = 1.0
        return out


def cond_loss(
    raw: torch.Tensor,
    spans: Sequence[Span],
    cond_cols: Sequence[int],
    idx: torch.Tensor,
    offsets: Sequence[int],
) -> torch.Tensor:
    """Cross-entropy pushing each fake row's conditioned column to the conditioned category."""
    b = raw.shape[0]
    total = raw.new_zeros(b)
    for j, span_i in enumerate(cond_cols):
        _, start, width, _ = spans[span_i]
        local = idx - offsets[j]
        mask = (local >= 0) & (local < width)
        if mask.any():
            ce = F.cross_entropy(
                raw[:, start : start + width], local.clamp(0, width - 1), reduction="none"
            )
            total = total + ce * mask
    return total.mean()


def _ema_update(ema: nn.Module, gen: nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, g in zip(ema.state_dict().values(), gen.state_dict().values(), strict=True):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(g, alpha=1 - decay)
            else:
                e.copy_(g)


def discriminator_backward(
    disc: nn.Module, crit: Any, opt_d: Any, real_in: torch.Tensor, fake_in: torch.Tensor
) -> float:
    """One DP-SGD backward on [real; fake]: afterwards `.grad` holds the clipped per-sample sum
    (ghost) or `.grad_sample` the per-sample gradients (hooks); the optimizer adds the noise."""
    opt_d.zero_grad(set_to_none=True)
    inp = torch.cat([real_in, fake_in], dim=0)
    target = torch.cat([torch.ones(real_in.shape[0]), torch.zeros(fake_in.shape[0])])
    logits = disc(inp).reshape(-1)  # 1-D: [B, 1] would break ghost clipping
    loss = crit(logits, target)
    loss.backward()
    return float(loss.detach())


def generator_step(
    gen: Generator,
    disc: Any,
    opt_g: torch.optim.Optimizer,
    opt_d: Any,
    b: int,
    cs: CondSampler,
    spans: list[Any],
    cond_cols: list[int],
    rng: np.random.Generator,
    embedding_dim: int,
) -> float:
    """A generator step that leaves nothing on the discriminator: hooks off, parameters frozen."""
    params = [p for p in disc.parameters()]
    hooks = hasattr(disc, "disable_hooks")  # False for a plain (non-private) discriminator
    if hooks:
        disc.disable_hooks()
    for p in params:
        p.requires_grad_(False)
    try:
        z = torch.randn(b, embedding_dim)
        if cs.dim:
            cond, idx = cs.fake(b, rng)
            raw = gen(torch.cat([z, cond], 1))
            logits = disc(torch.cat([activate(raw, spans), cond], 1)).reshape(-1)
            extra = cond_loss(raw, spans, cond_cols, idx, list(cs.offsets))
        else:
            raw = gen(z)
            logits = disc(activate(raw, spans)).reshape(-1)
            extra = raw.new_zeros(())
        loss = nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(b)) + extra
        opt_g.zero_grad(set_to_none=True)
        loss.backward()
        opt_g.step()
    finally:
        for p in params:
            p.requires_grad_(True)
        if hooks:
            disc.enable_hooks()
    return float(loss.detach())
