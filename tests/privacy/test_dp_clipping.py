"""Silent breakers of DP-SGD in a GAN: ghost clipping must really clip per sample; generator
steps must leave nothing on the discriminator that its DP optimizer would add to the noisy sum."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from torch import nn  # noqa: E402

from tamis.privacy.dp.ctgan import (  # noqa: E402
    DPCTGAN,
    DPCTGANConfig,
    discriminator_backward,
    generator_step,
)
from tamis.privacy.dp.nets import Discriminator  # noqa: E402
from tamis.privacy.dp.transform import DPTransformer  # noqa: E402
from tamis.privacy.ledger import PrivacyLedger  # noqa: E402

C = 0.05  # small, so that every per-sample gradient is clipped


def _private(module: nn.Module, mode: str, n: int = 64, batch: int = 16) -> tuple:
    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    opt = torch.optim.SGD(module.parameters(), lr=0.1)
    data = DataLoader(TensorDataset(torch.zeros(n, 1)), batch_size=batch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = PrivacyEngine().make_private(
            module=module,
            optimizer=opt,
            data_loader=data,
            criterion=nn.BCEWithLogitsLoss(),
            noise_multiplier=0.0,
            max_grad_norm=C,
            poisson_sampling=True,
            grad_sample_mode=mode,
        )
    if len(made) == 4:
        return made[0], made[1], made[2]
    return made[0], made[1], nn.BCEWithLogitsLoss()


def _manual_clipped_sum(module: nn.Module, inp: torch.Tensor, target: torch.Tensor) -> list:
    """Sum over samples of min(1, C / ||g_i||) g_i, one autograd call per sample."""
    params = [p for p in module.parameters()]
    total = [torch.zeros_like(p) for p in params]
    norms = []
    for i in range(inp.shape[0]):
        out = module(inp[i : i + 1]).reshape(-1)
        loss = nn.functional.binary_cross_entropy_with_logits(out, target[i : i + 1])
        grads = torch.autograd.grad(loss, params)
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        norms.append(float(norm))
        factor = min(1.0, C / (float(norm) + 1e-6))
        for t, g in zip(total, grads, strict=True):
            t += factor * g
    assert min(norms) > C, "the check needs every sample to be clipped"
    return total


def _inputs(dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(7, dim, generator=g) * 3, torch.randn(9, dim, generator=g) * 3


def test_ghost_clipping_equals_manual_per_sample_clipping() -> None:
    torch.manual_seed(0)
    disc = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference.load_state_dict(disc.state_dict())
    real, fake = _inputs(5)
    dp_disc, opt, crit = _private(disc, "ghost")
    discriminator_backward(dp_disc, crit, opt, real, fake)
    target = torch.cat([torch.ones(7), torch.zeros(9)])
    expected = _manual_clipped_sum(reference, torch.cat([real, fake]), target)
    for p, e in zip(disc.parameters(), expected, strict=True):
        assert torch.allclose(p.grad, e, rtol=1e-4, atol=1e-6)
    # the clipped sum of 16 samples has norm <= 16 C
    norm = torch.sqrt(sum((p.grad**2).sum() for p in disc.parameters()))
    assert float(norm) <= 16 * C + 1e-6


class _Column(nn.Module):
    """A discriminator with a [B, 1] output: the shape that breaks ghost clipping."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.inner.seq(x)
        return out


def test_the_check_catches_column_shaped_logits() -> None:
    """Negative control: with [B, 1] logits and targets, ghost clipping no longer clips."""
    torch.manual_seed(0)
    inner = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference.load_state_dict(inner.state_dict())
    real, fake = _inputs(5)
    dp_disc, opt, crit = _private(_Column(inner), "ghost")
    opt.zero_grad()
    logits = dp_disc(torch.cat([real, fake]))  # [16, 1]
    loss = crit(logits, torch.cat([torch.ones(7, 1), torch.zeros(9, 1)]))
    loss.backward()
    target = torch.cat([torch.ones(7), torch.zeros(9)])
    expected = _manual_clipped_sum(reference, torch.cat([real, fake]), target)
    got = list(inner.parameters())
    assert not all(
        torch.allclose(p.grad, e, rtol=1e-3, atol=1e-5) for p, e in zip(got, expected, strict=True)
    )


def test_hooks_mode_clips_per_sample_too() -> None:
    torch.manual_seed(1)
    disc = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference = Discriminator(5, [8], dropout=0.0, layer_norm=False)
    reference.load_state_dict(disc.state_dict())
    real, fake = _inputs(5)
    dp_disc, opt, crit = _private(disc, "hooks")
    discriminator_backward(dp_disc, crit, opt, real, fake)
    opt.clip_and_accumulate()
    target = torch.cat([torch.ones(7), torch.zeros(9)])
    expected = _manual_clipped_sum(reference, torch.cat([real, fake]), target)
    for p, e in zip(disc.parameters(), expected, strict=True):
        assert torch.allclose(p.summed_grad, e, rtol=1e-4, atol=1e-6)


def _setup(mode: str) -> tuple:
    rng = np.random.default_rng(0)
    df = pl.DataFrame(
        {
            "x": rng.normal(size=300),
            "c": rng.choice(["a", "b", "c"], 300).tolist(),
            "d": rng.choice(["u", "v"], 300).tolist(),
        }
    )
    model = DPCTGAN(DPCTGANConfig(embedding_dim=8, generator_dim=[16], discriminator_dim=[16]))
    ledger = PrivacyLedger(100.0, 1e-4)
    model.transformer = DPTransformer.fit(
        df,
        {},
        ledger,
        sigma=1.0,
        conditional="noisy",
        n_modes=3,
        rng=np.random.default_rng(0),
        threshold_delta=1e-5,
    )
    gen, disc, cs = model._build()
    dp_disc, opt_d, crit = _private(disc, mode, n=300, batch=30)
    opt_g = torch.optim.Adam(gen.parameters(), lr=1e-3)
    spans = model.transformer.spans()
    cond_cols = [i for i, s in enumerate(spans) if s[0] in ("c", "d")]
    return model, gen, disc, dp_disc, opt_d, crit, opt_g, cs, spans, cond_cols


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_generator_step_leaves_nothing_on_the_discriminator(mode: str) -> None:
    model, gen, disc, dp_disc, opt_d, crit, opt_g, cs, spans, cond_cols = _setup(mode)
    rng = np.random.default_rng(0)
    # from a clean discriminator: the generator step must not create grads or per-sample grads
    opt_d.zero_grad(set_to_none=True)
    generator_step(gen, dp_disc, opt_g, opt_d, 32, cs, spans, cond_cols, rng, 8)
    for p in disc.parameters():
        assert p.grad is None
        assert getattr(p, "grad_sample", None) is None
        assert getattr(p, "_norm_sample", None) is None
        assert p.requires_grad
    assert any(p.grad is not None for p in gen.parameters())
    # after a real DP-SGD step: the generator step must not change what the optimizer holds
    real = model._real_input(
        torch.rand(20, model.transformer.dim), torch.zeros(20, 2, dtype=torch.long), cs, rng
    )
    fake = model._fake_input(gen, 32, cs, spans, rng)
    discriminator_backward(dp_disc, crit, opt_d, real, fake)
    before = [None if p.grad is None else p.grad.clone() for p in disc.parameters()]
    samples = [getattr(p, "grad_sample", None) for p in disc.parameters()]
    generator_step(gen, dp_disc, opt_g, opt_d, 32, cs, spans, cond_cols, rng, 8)
    for p, b, s in zip(disc.parameters(), before, samples, strict=True):
        assert (p.grad is None and b is None) or torch.equal(p.grad, b)
        gs = getattr(p, "grad_sample", None)
        assert (gs is None and s is None) or (
            gs is not None and s is not None and torch.equal(gs, s)
        )
    # hooks are back on for the next DP-SGD step
    assert dp_disc.hooks_enabled
