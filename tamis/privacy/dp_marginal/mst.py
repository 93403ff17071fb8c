"""MST (McKenna, Miklau & Sheldon 2021, "Winning the NIST contest"), written from the paper.

The budget rho left after the domain is split in three equal parts:

1. every 1-way marginal with the Gaussian mechanism, sigma = sqrt(d / (2 rho/3));
2. a maximum spanning tree over the column pairs, built Kruskal-style: in each of the d - 1
   rounds the exponential mechanism (epsilon = sqrt(8 (rho/3) / (d - 1)), score sensitivity 1)
   picks one pair joining two components, scored by the L1 distance between the pair's true
   counts and the counts implied by independence of the noisy 1-way marginals (a public estimate:
   adding or removing a row moves the score by at most 1);
3. the d - 1 tree pairs' 2-way marginals with sigma = sqrt((d - 1) / (2 rho/3)).

A graphical model is then fitted to all the noisy marginals with mbi (Private-PGM) and sampled;
without mbi (estimator `tree`) rows are drawn along the tree from the noisy marginals themselves.
The domain compression of the paper (merging rare noisy values) is not done: domains are public.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from tamis.privacy.dp_marginal.base import MarginalSynth
from tamis.privacy.dp_marginal.estimation import _nonneg
from tamis.privacy.dp_marginal.mechanisms import (
    Codes,
    Measurement,
    Progress,
    Rng,
    canonical,
    exponential_select,
    marginal,
    measure,
)
from tamis.privacy.dp_marginal.zcdp import ZCDPLedger

__all__ = ["MST"]


class MST(MarginalSynth):
    mechanism = "mst"

    def _run(self, codes: Codes, ledger: ZCDPLedger, rng: Rng, progress: Progress) -> None:
        cols = list(self.domains)
        sizes = {c: self.domains[c].cells for c in cols}
        d = len(cols)
        rho = ledger.rho_left
        if d == 1:
            sigma = math.sqrt(1.0 / (2.0 * rho))
            self.measurements = [
                measure(codes, (cols[0],), sizes, sigma, rng, ledger, f"1-way:{cols[0]}")
            ]
            return
        part = rho / 3.0
        sigma1 = math.sqrt(d / (2.0 * part))
        ones: list[Measurement] = []
        for c in cols:
            ones.append(measure(codes, (c,), sizes, sigma1, rng, ledger, f"1-way:{c}"))
        progress("mst: 1-way marginals measured")
        # public estimate of every pair from the noisy 1-ways (independence)
        total = max(1.0, float(np.mean([m.noisy.sum() for m in ones])))
        p = {m.clique[0]: _nonneg(m.noisy) for m in ones}
        pairs = [canonical(pr, cols) for pr in itertools.combinations(cols, 2)]
        scores: dict[tuple[str, ...], float] = {}
        for a, b in pairs:
            est = total * np.outer(p[a], p[b]).ravel()
            scores[(a, b)] = float(np.abs(marginal(codes, (a, b), sizes) - est).sum())
        eps_sel = math.sqrt(8.0 * part / (d - 1))
        parent = {c: c for c in cols}

        def find(c: str) -> str:
            while parent[c] != c:
                parent[c] = parent[parent[c]]
                c = parent[c]
            return c

        edges: list[tuple[str, ...]] = []
        for r in range(d - 1):
            cand = [pr for pr in pairs if find(pr[0]) != find(pr[1])]
            k = exponential_select(np.array([scores[pr] for pr in cand]), eps_sel, 1.0, rng)
            a, b = cand[k]
            ledger.exponential(
                f"select:{r + 1}",
                eps_sel,
                clique=[a, b],
                note=f"exponential mechanism over {len(cand)} pairs joining two components",
            )
            parent[find(a)] = find(b)
            edges.append((a, b))
        progress("mst: spanning tree selected")
        sigma2 = math.sqrt((d - 1) / (2.0 * part))
        twos = [
            measure(codes, e, sizes, sigma2, rng, ledger, f"2-way:{e[0]}|{e[1]}") for e in edges
        ]
        self.measurements = ones + twos
        rho_sel = eps_sel**2 / 8
        self.selected = [
            {
                "round": i + 1,
                "clique": list(e),
                "rho_select": rho_sel,
                "rho_measure": 1.0 / (2 * sigma2**2),
                "sigma": sigma2,
            }
            for i, e in enumerate(edges)
        ]
        progress("mst: tree marginals measured")
