"""Randomness of DP mechanisms: fresh from the OS CSPRNG (`secrets`), never seeded by the pipeline
seed, never stored. NumPy only (torch is imported by the caller that passes a generator), so the
marginal synthesizers use it without importing torch."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def secure_numpy_rng() -> np.random.Generator:
    """A NumPy generator seeded with 128 bits from the OS CSPRNG; the seed is never kept."""
    return np.random.Generator(np.random.PCG64(secrets.randbits(128)))


def reseed_secure(gen: torch.Generator) -> torch.Generator:
    """Re-seed a torch generator with 64 fresh bits from the OS CSPRNG (never kept)."""
    gen.manual_seed(secrets.randbits(64))
    return gen
