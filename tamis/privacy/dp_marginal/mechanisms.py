"""The private part shared by MST and AIM: exact marginals, the Gaussian mechanism on a marginal
(charged to the ledger before it runs) and the exponential mechanism."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamis.privacy.dp_marginal.zcdp import ZCDPLedger

Clique = tuple[str, ...]
#: the private rows as cell indices per column (what a mechanism's `_run` may read)
Codes = dict[str, np.ndarray]
Rng = np.random.Generator
Progress = Callable[..., None]


@dataclass
class Measurement:
    """A noisy marginal: counts over the clique's cells (C order) plus N(0, sigma^2) noise."""

    clique: Clique
    noisy: np.ndarray
    sigma: float

    def to_dict(self) -> dict[str, Any]:
        return {"clique": list(self.clique), "sigma": self.sigma, "noisy": self.noisy.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        return cls(tuple(d["clique"]), np.asarray(d["noisy"], dtype=np.float64), float(d["sigma"]))


def marginal(codes: dict[str, np.ndarray], clique: Clique, sizes: dict[str, int]) -> np.ndarray:
    """Exact counts of a marginal (flat, C order over the clique's cells)."""
    shape = [sizes[c] for c in clique]
    idx = np.ravel_multi_index([codes[c] for c in clique], shape)
    return np.bincount(idx, minlength=int(np.prod(shape))).astype(np.float64)


def canonical(clique: Clique | list[str], order: list[str]) -> Clique:
    """A clique's columns in table order (so flat vectors match mbi's factor layout)."""
    pos = {c: i for i, c in enumerate(order)}
    return tuple(sorted(set(clique), key=pos.__getitem__))


def measure(
    codes: dict[str, np.ndarray],
    clique: Clique,
    sizes: dict[str, int],
    sigma: float,
    rng: np.random.Generator,
    ledger: ZCDPLedger,
    name: str,
) -> Measurement:
    """Gaussian mechanism on one marginal (L2 sensitivity 1: one row moves one count by 1)."""
    cells = int(np.prod([sizes[c] for c in clique]))
    ledger.gaussian(name, sigma, clique=list(clique), cells=cells)  # charged before it runs
    counts = marginal(codes, clique, sizes)
    return Measurement(clique, counts + rng.normal(0.0, sigma, size=counts.shape), sigma)


def exponential_select(
    scores: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator
) -> int:
    """Index drawn with probability proportional to exp(epsilon * score / (2 * sensitivity)).

    Gumbel-max: argmax of the scaled scores plus independent standard Gumbel noise has exactly
    that distribution."""
    z = epsilon * np.asarray(scores, dtype=np.float64) / (2.0 * sensitivity)
    return int(np.argmax(z + rng.gumbel(size=len(z))))
