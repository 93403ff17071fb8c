"""Post-processing of the noisy measurements: a graphical model (tamis' estimator or mbi's) and
sampling along MST's tree. Reads only noisy marginals and the public domain, never private rows."""

from __future__ import annotations

import importlib.util
from collections import deque
from typing import Any

import numpy as np

from tamis.errors import MissingDependencyError
from tamis.privacy.dp_marginal.domain import ColumnDomain
from tamis.privacy.dp_marginal.mechanisms import Clique, Measurement


def mbi_available() -> bool:
    return (
        importlib.util.find_spec("mbi") is not None and importlib.util.find_spec("jax") is not None
    )


def require_mbi(what: str) -> None:
    if not mbi_available():
        raise MissingDependencyError(
            f"{what} needs mbi (Private-PGM) and jax, which are not installed",
            fix="pip install 'tamis[dp]'",
        )


def _mbi() -> Any:
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mbi
    return mbi


def mbi_domain(domains: dict[str, ColumnDomain]) -> Any:
    mbi = _mbi()
    return mbi.Domain(list(domains), [d.cells for d in domains.values()])


def estimate(
    domains: dict[str, ColumnDomain],
    measurements: list[Measurement],
    iters: int,
    warm_start: Any = None,
) -> Any:
    """A graphical model (mbi MarkovRandomField) fitted to the noisy measurements only."""
    mbi = _mbi()
    dom = mbi_domain(domains)
    ms = [
        mbi.LinearMeasurement(np.asarray(m.noisy), m.clique, stddev=float(m.sigma))
        for m in measurements
    ]
    return mbi.estimation.MirrorDescent().estimate(dom, ms, iters=iters, warm_start=warm_start)


def model_marginal(model: Any, clique: Clique) -> np.ndarray:
    return np.asarray(model.project(clique).datavector(flatten=True), dtype=np.float64)


def _nonneg(x: np.ndarray) -> np.ndarray:
    """Projection onto non-negative weights summing to 1 (uniform when nothing is left)."""
    y = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    s = y.sum()
    return y / s if s > 0 else np.full(len(y), 1.0 / len(y))


def sample_tree(
    domains: dict[str, ColumnDomain],
    measurements: list[Measurement],
    n: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Rows drawn along a forest of 2-way measurements, from the noisy marginals only.

    Each tree's root comes from its noisy 1-way marginal, every other column from its noisy 2-way
    marginal with its parent, conditioned on the parent's drawn cell (negative counts set to 0).
    Columns in no 2-way measurement are drawn from their 1-way marginal."""
    cols = list(domains)
    sizes = {c: domains[c].cells for c in cols}
    one = {m.clique[0]: m.noisy for m in measurements if len(m.clique) == 1}
    adj: dict[str, list[tuple[str, Measurement]]] = {c: [] for c in cols}
    for m in measurements:
        if len(m.clique) == 2:
            a, b = m.clique
            adj[a].append((b, m))
            adj[b].append((a, m))
    out: dict[str, np.ndarray] = {}
    for root in cols:
        if root in out:
            continue
        p = _nonneg(one[root]) if root in one else np.full(sizes[root], 1.0 / sizes[root])
        out[root] = rng.choice(sizes[root], size=n, p=p)
        queue = deque([root])
        while queue:
            parent = queue.popleft()
            for child, m in adj[parent]:
                if child in out:
                    continue
                table = np.maximum(m.noisy.reshape(sizes[m.clique[0]], sizes[m.clique[1]]), 0)
                if m.clique[0] == child:
                    table = table.T  # rows: parent's cells
                fallback = _nonneg(one[child]) if child in one else None
                col = np.empty(n, dtype=np.int64)
                for v in np.unique(out[parent]):
                    rows = np.flatnonzero(out[parent] == v)
                    w = table[v]
                    pr = (
                        w / w.sum()
                        if w.sum() > 0
                        else (fallback if fallback is not None else np.full(len(w), 1.0 / len(w)))
                    )
                    col[rows] = rng.choice(len(w), size=len(rows), p=pr)
                out[child] = col
                queue.append(child)
    return out
