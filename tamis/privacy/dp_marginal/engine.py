"""A graphical model fitted to noisy marginals, in NumPy (Private-PGM's estimator, written here).

Why not mbi for every fit: mbi 2 compiles JAX programs per model structure, and AIM changes the
structure every round. Measured on the shared 2-core machine on adult: one mbi estimation of MST's
29 cliques took 41 s (mostly compilation) and each marginal query of a new clique 2.4 s; AIM's
~50 rounds would take hours. This engine runs the same algorithm (McKenna, Sheldon & Miklau 2019:
entropic mirror descent on the potentials of a junction tree, exact belief propagation, an L2 loss
weighted by 1/sigma^2, Armijo step size) with no compilation. It only ever sees the noisy
measurements and the public domain sizes (post-processing).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence

import numpy as np

Clique = tuple[str, ...]

__all__ = ["GraphicalModel", "junction_tree", "model_size"]


def _logsumexp(a: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    if not axis:
        return a
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(a - m), axis=axis, keepdims=True)) + m
    return np.squeeze(out, axis=axis)


def junction_tree(
    attrs: Sequence[str], sizes: dict[str, int], cliques: Sequence[Clique]
) -> tuple[list[Clique], list[tuple[int, int]]]:
    """Maximal cliques of a triangulation (greedy min-weight elimination) and the tree's edges.

    Cliques keep the global attribute order (so arrays broadcast without transposes)."""
    pos = {a: i for i, a in enumerate(attrs)}
    nbrs: dict[str, set[str]] = {a: set() for a in attrs}
    for cl in cliques:
        for a, b in itertools.combinations(cl, 2):
            nbrs[a].add(b)
            nbrs[b].add(a)
    left = set(attrs)
    found: list[frozenset[str]] = []
    while left:

        def weight(v: str) -> tuple[float, int]:
            near = nbrs[v] & left
            return (float(np.prod([sizes[u] for u in near | {v}])), pos[v])

        v = min(left, key=weight)
        elim = (nbrs[v] & left) | {v}
        found.append(frozenset(elim))
        for a, b in itertools.combinations(elim - {v}, 2):
            nbrs[a].add(b)
            nbrs[b].add(a)
        left.remove(v)
    maximal = [c for c in found if not any(c < o for o in found)]
    maximal = list(dict.fromkeys(maximal))
    out = [tuple(sorted(c, key=pos.__getitem__)) for c in maximal]
    # maximum spanning tree over separator sizes (Prim); empty separators join components
    edges: list[tuple[int, int]] = []
    if len(out) > 1:
        inside = {0}
        while len(inside) < len(out):
            best = max(
                ((i, j) for i in inside for j in range(len(out)) if j not in inside),
                key=lambda e: (len(set(out[e[0]]) & set(out[e[1]])), -e[1]),
            )
            edges.append(best)
            inside.add(best[1])
    return out, edges


def model_size(attrs: Sequence[str], sizes: dict[str, int], cliques: Sequence[Clique]) -> float:
    """Megabytes of the junction tree's clique tables (float64), as AIM's size limit counts."""
    cl, _ = junction_tree(attrs, sizes, cliques)
    return sum(float(np.prod([sizes[a] for a in c])) for c in cl) * 8 / 2**20


class GraphicalModel:
    """Potentials on measured cliques; marginals by belief propagation on a junction tree."""

    def __init__(
        self,
        attrs: Sequence[str],
        sizes: dict[str, int],
        measurements: Sequence[tuple[Clique, np.ndarray, float]],
        warm_start: GraphicalModel | None = None,
    ) -> None:
        self.attrs = list(attrs)
        self.sizes = dict(sizes)
        self.meas = [
            (tuple(c), np.asarray(y, dtype=np.float64), float(s)) for c, y, s in measurements
        ]
        self.cliques: list[Clique] = list(dict.fromkeys(c for c, _, _ in self.meas))
        self.tree, self.edges = junction_tree(self.attrs, self.sizes, self.cliques)
        # minimum-variance estimate of the total from the noisy sums
        w = np.array([1.0 / (s * s * y.size) for _, y, s in self.meas])
        t = np.array([y.sum() for _, y, _ in self.meas])
        self.total = float(max(1.0, (w * t).sum() / w.sum())) if len(w) else 1.0
        self.theta = {c: np.zeros(self._shape(c)) for c in self.cliques}
        if warm_start is not None:
            for c in self.cliques:
                if c in warm_start.theta:
                    self.theta[c] = warm_start.theta[c].copy()
        self.home = {
            c: next(i for i, k in enumerate(self.tree) if set(c) <= set(k)) for c in self.cliques
        }
        self._order()
        self.mu = self.infer(self.theta)

    def _shape(self, c: Clique) -> tuple[int, ...]:
        return tuple(self.sizes[a] for a in c)

    def _order(self) -> None:
        adj: dict[int, list[int]] = {i: [] for i in range(len(self.tree))}
        for i, j in self.edges:
            adj[i].append(j)
            adj[j].append(i)
        self.parent: dict[int, int] = {}
        self.order: list[int] = []
        seen = set()
        for root in range(len(self.tree)):
            if root in seen:
                continue
            queue = deque([root])
            seen.add(root)
            while queue:
                k = queue.popleft()
                self.order.append(k)
                for j in adj[k]:
                    if j not in seen:
                        seen.add(j)
                        self.parent[j] = k
                        queue.append(j)

    def _expand(self, arr: np.ndarray, sub: Clique, into: Clique) -> np.ndarray:
        return arr.reshape([self.sizes[a] if a in sub else 1 for a in into])

    def _sum_to(self, arr: np.ndarray, frm: Clique, to: Clique, log: bool) -> np.ndarray:
        axes = tuple(i for i, a in enumerate(frm) if a not in to)
        return _logsumexp(arr, axes) if log else arr.sum(axis=axes)

    def infer(self, theta: dict[Clique, np.ndarray]) -> dict[int, np.ndarray]:
        """Clique marginals (counts summing to the total) by two-pass belief propagation."""
        belief = [np.zeros(self._shape(k)) for k in self.tree]
        for c, th in theta.items():
            k = self.home[c]
            belief[k] = belief[k] + self._expand(th, c, self.tree[k])
        up: dict[int, np.ndarray] = {}
        for k in reversed(self.order):
            if k not in self.parent:
                continue
            p = self.parent[k]
            sep = tuple(a for a in self.tree[k] if a in self.tree[p])
            msg = self._sum_to(belief[k], self.tree[k], sep, log=True)
            up[k] = msg
            belief[p] = belief[p] + self._expand(msg, sep, self.tree[p])
        for k in self.order:
            if k not in self.parent:
                continue
            p = self.parent[k]
            sep = tuple(a for a in self.tree[k] if a in self.tree[p])
            rest = belief[p] - self._expand(up[k], sep, self.tree[p])
            belief[k] = belief[k] + self._expand(
                self._sum_to(rest, self.tree[p], sep, log=True), sep, self.tree[k]
            )
        out = {}
        for i, b in enumerate(belief):
            z = _logsumexp(b, tuple(range(b.ndim)))
            out[i] = self.total * np.exp(b - z)
        return out

    def project(self, clique: Clique, mu: dict[int, np.ndarray] | None = None) -> np.ndarray | None:
        """The model's marginal on `clique` (counts, flat), or None if no tree clique covers it."""
        mu = self.mu if mu is None else mu
        for i, k in enumerate(self.tree):
            if set(clique) <= set(k):
                return self._sum_to(mu[i], k, tuple(clique), log=False).ravel()
        return None

    def _loss(self, mu: dict[int, np.ndarray]) -> tuple[float, dict[Clique, np.ndarray]]:
        loss = 0.0
        grad = {c: np.zeros(self._shape(c)) for c in self.cliques}
        for c, y, s in self.meas:
            x = self.project(c, mu)
            assert x is not None
            r = x - y
            loss += float(r @ r) / (s * s)
            grad[c] += (2.0 * r / (s * s)).reshape(self._shape(c))
        return loss, grad

    def fit(self, iters: int) -> GraphicalModel:
        """Entropic mirror descent on the potentials with an Armijo step (Private-PGM)."""
        if not self.meas:
            return self
        lip = max(sum(2.0 / (s * s) for c2, _, s in self.meas if c2 == c) for c in self.cliques)
        alpha = 1.0 / (lip * self.total)
        loss, grad = self._loss(self.mu)
        for _ in range(iters):
            theta2 = {c: self.theta[c] - alpha * grad[c] for c in self.cliques}
            mu2 = self.infer(theta2)
            loss2, grad2 = self._loss(mu2)
            dot = sum(
                float((grad[c].ravel() * (self._proj_c(c, self.mu) - self._proj_c(c, mu2))).sum())
                for c in self.cliques
            )
            if loss - loss2 >= 0.5 * alpha * dot:
                self.theta, self.mu, loss, grad = theta2, mu2, loss2, grad2
                alpha *= 1.01
            else:
                alpha *= 0.5
        self.loss = loss
        return self

    def _proj_c(self, c: Clique, mu: dict[int, np.ndarray]) -> np.ndarray:
        x = self.project(c, mu)
        assert x is not None
        return x

    def sample(self, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """n rows drawn from the model along the junction tree (post-processing)."""
        out: dict[str, np.ndarray] = {}
        for k in self.order:
            clique = self.tree[k]
            known = tuple(a for a in clique if a in out)
            new = tuple(a for a in clique if a not in out)
            if not new:
                continue
            table = self.mu[k].transpose(
                [clique.index(a) for a in known] + [clique.index(a) for a in new]
            )
            ks = int(np.prod([self.sizes[a] for a in known])) if known else 1
            table = np.maximum(table.reshape(ks, -1), 0.0)
            sums = table.sum(axis=1, keepdims=True)
            table = np.where(sums > 0, table / np.where(sums > 0, sums, 1), 1.0 / table.shape[1])
            cdf = np.cumsum(table, axis=1)
            cdf[:, -1] = 1.0
            key = (
                np.ravel_multi_index([out[a] for a in known], [self.sizes[a] for a in known])
                if known
                else np.zeros(n, dtype=np.int64)
            )
            u = rng.random(n)
            cell = np.empty(n, dtype=np.int64)
            for v in np.unique(key):
                rows = np.flatnonzero(key == v)
                cell[rows] = np.searchsorted(cdf[v], u[rows], side="right")
            cell = np.minimum(cell, table.shape[1] - 1)
            for a, col in zip(
                new, np.unravel_index(cell, [self.sizes[a] for a in new]), strict=True
            ):
                out[a] = col.astype(np.int64)
        return {a: out[a] for a in self.attrs}
