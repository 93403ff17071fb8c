"""DP-SGD wiring of the discriminator with Opacus: Poisson sampling, per-sample clipping, the
floating-point-safe Gaussian, and every generator Opacus draws from re-seeded from the OS CSPRNG.

Opacus' own `secure_mode=True` needs `torchcsprng` (archived, not installable here); the noise
and sampling generators are seeded from `secrets` instead (`tamis.privacy.dp.secure`), and the
training loop re-seeds them before every step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from tamis.errors import PrivacyError
from tamis.privacy.dp.secure import reseed_secure

if TYPE_CHECKING:
    from tamis.privacy.dp.config import DPCTGANConfig


def opacus_steps_per_epoch(n: int, batch_size: int) -> tuple[float, int]:
    """Opacus' sample rate q = 1 / len(loader) and the steps its Poisson sampler runs per epoch,
    `int(1 / q)` -- one fewer than ceil(n / batch_size) for some sizes (e.g. 93 batches)."""
    q = 1.0 / max(1, math.ceil(n / batch_size))
    return q, int(1 / q)


@dataclass
class PrivateDiscriminator:
    """What Opacus' `make_private` returns, plus the two generators to re-seed every step."""

    engine: Any
    module: Any
    optimizer: Any
    criterion: Any
    loader: Any
    noise_gen: torch.Generator
    sample_gen: torch.Generator


def make_private(
    disc: nn.Module,
    opt_d: torch.optim.Optimizer,
    loader: Any,
    cfg: DPCTGANConfig,
    sigma: float,
) -> PrivateDiscriminator:
    """The discriminator, its optimizer and the loader made private by Opacus (noise multiplier
    `sigma`, clipping norm `cfg.max_grad_norm`), with secure noise and Poisson sampling."""
    from opacus import PrivacyEngine
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    # known-noisy Opacus warnings: its secure RNG needs torchcsprng (the generators here are
    # seeded from the OS CSPRNG instead, see the module doc) and full backward hooks. Set
    # before PrivacyEngine(), which is where Opacus warns about the RNG.
    warnings.filterwarnings("ignore", message="Secure RNG turned off")
    warnings.filterwarnings("ignore", message="Full backward hook is firing")
    engine = PrivacyEngine(accountant=cfg.accountant)
    noise_gen = reseed_secure(torch.Generator())
    made = engine.make_private(
        module=disc,
        optimizer=opt_d,
        data_loader=loader,
        criterion=nn.BCEWithLogitsLoss(),
        noise_multiplier=sigma,
        max_grad_norm=cfg.max_grad_norm,
        poisson_sampling=True,
        grad_sample_mode=cfg.grad_sample_mode,
        noise_generator=noise_gen,
    )
    if len(made) == 4:  # ghost clipping also wraps the criterion
        dp_disc, dp_opt, crit, dp_loader = made
    else:
        (dp_disc, dp_opt, dp_loader), crit = made, nn.BCEWithLogitsLoss()
    # Poisson sampling from the OS CSPRNG too (Opacus would use torch's global generator)
    sampler = dp_loader.batch_sampler
    if not isinstance(sampler, UniformWithReplacementSampler):
        raise PrivacyError(
            f"Opacus returned a {type(sampler).__name__} batch sampler, not Poisson sampling",
            field="batch_size",
            fix="report this as a bug (an Opacus upgrade changed make_private)",
        )
    sample_gen = sampler.generator = reseed_secure(torch.Generator())
    # the floating-point-safe Gaussian of Opacus' secure_mode (Holohan et al. 2021)
    dp_opt.secure_mode = True
    return PrivateDiscriminator(engine, dp_disc, dp_opt, crit, dp_loader, noise_gen, sample_gen)


def check_accounted_steps(engine: Any, ran: int) -> None:
    """Opacus' accountant must have seen exactly the noisy steps the loop counted."""
    accounted = sum(int(h[2]) for h in engine.accountant.history)
    if accounted != ran:
        raise PrivacyError(
            f"Opacus' accountant saw {accounted} DP-SGD steps, the loop counted {ran}",
            field="epochs",
            fix="report this as a bug; the ledger cannot tell which count is right",
        )
