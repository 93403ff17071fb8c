"""AIM (McKenna, Mullins, Sheldon & Miklau 2022), written from the paper.

- Workload: all `degree`-way marginals by default (degree 2), or the listed column sets; with a
  `target`, every (degree+1)-way marginal holding the target is added. Candidates are the
  workload's downward closure, each weighted by its overlap with the workload,
  w_r = sum_{s in workload} |r & s|.
- Budget rho (after the domain): T = 16 d rounds are planned, with a share alpha = 0.9 to
  measurements and 0.1 to selections: sigma = sqrt(T / (2 alpha rho)), epsilon = sqrt(8 (1 -
  alpha) rho / T). Every 1-way marginal is measured first with that sigma.
- Each round: among the candidates whose addition keeps the junction tree within
  `max_model_size` * (rho used / rho) megabytes, the exponential mechanism (sensitivity max w_r)
  picks r maximising w_r (||M_r(D) - M_r(p_hat)||_1 - sqrt(2/pi) sigma n_r), n_r the cells of r
  and p_hat the current model; r is measured with sigma; the model is refitted (warm start).
- Annealing: when the model's answer on r moved by less than sqrt(2/pi) sigma n_r, sigma is halved
  and epsilon doubled. When what is left cannot pay two more rounds, the last round spends it all
  (sigma = sqrt(1 / (2 alpha rest)), epsilon = sqrt(8 (1 - alpha) rest)).

The model is tamis' NumPy graphical-model estimator (`engine.py`): Private-PGM's algorithm without
JAX compilation, which made mbi far too slow for per-round refits here (see engine.py). Model
answers on candidates that no junction-tree clique covers are read from a sample of the model
(post-processing; the sampling error is small beside the noise term of the score).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from pydantic import Field

from tamis.errors import PrivacyError
from tamis.privacy.dp_marginal.base import MarginalSynth
from tamis.privacy.dp_marginal.config import MarginalConfig
from tamis.privacy.dp_marginal.engine import GraphicalModel, model_size
from tamis.privacy.dp_marginal.mechanisms import (
    Clique,
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

__all__ = ["AIM", "workload_cliques"]

ALPHA = 0.9
BIAS = math.sqrt(2.0 / math.pi)


def workload_cliques(
    cols: list[str],
    workload: list[list[str]] | None,
    degree: int,
    target: str | None,
) -> list[Clique]:
    """The workload (column sets in table order), refusing unknown columns."""
    if target is not None and target not in cols:
        raise PrivacyError(
            f"target column '{target}' is not in the input",
            field="target",
            fix=f"use one of: {', '.join(cols)}",
        )
    if workload:
        bad = sorted({c for w in workload for c in w} - set(cols))
        if bad:
            raise PrivacyError(
                f"the workload names columns that are not in the input: {', '.join(bad)}",
                field="workload",
                fix=f"use column names among: {', '.join(cols)}",
            )
        out = [canonical(w, cols) for w in workload if w]
    else:
        if not (1 <= degree <= len(cols)):
            raise PrivacyError(
                f"degree={degree} must be between 1 and the number of columns ({len(cols)})",
                field="degree",
                fix="use degree 2 (all pairs) or 3",
            )
        out = [canonical(c, cols) for c in itertools.combinations(cols, degree)]
    if target is not None:
        others = [c for c in cols if c != target]
        k = min(degree, len(others))
        out += [canonical((target, *c), cols) for c in itertools.combinations(others, k)]
    return list(dict.fromkeys(out))


def _candidates(work: list[Clique], cols: list[str]) -> dict[Clique, float]:
    cand: dict[Clique, float] = {}
    for w in work:
        for k in range(1, len(w) + 1):
            for r in itertools.combinations(w, k):
                cand[canonical(r, cols)] = 0.0
    for r in cand:
        cand[r] = float(sum(len(set(r) & set(w)) for w in work))
    return cand


class AIMConfig(MarginalConfig):
    """Settings of AIM (the `dp_aim` step's params): MST's plus the workload and the rounds."""

    workload: list[list[str]] | None = Field(
        default=None, description="column sets to answer well (default: all `degree`-way sets)"
    )
    degree: int = Field(default=2, ge=1, description="size of the default workload's marginals")
    target: str | None = Field(
        default=None,
        description="a column to predict: adds every (degree+1)-way marginal holding it",
    )
    max_model_size: float = Field(
        default=80.0, gt=0, description="largest junction tree allowed, in megabytes"
    )
    round_iters: int = Field(default=100, ge=1, description="estimation iterations per round")
    max_rounds: int | None = Field(
        default=None, ge=1, description="stop after this many rounds (the last spends the rest)"
    )


class AIM(MarginalSynth):
    mechanism = "aim"
    config_model = AIMConfig
    config: AIMConfig

    def __init__(self, config: AIMConfig) -> None:
        super().__init__(config)

    def _check(self) -> None:
        super()._check()
        if self.config.estimator == "tree":
            raise PrivacyError(
                "AIM needs a graphical model; estimator=tree is for MST only",
                field="estimator",
                fix="use estimator auto (or mbi)",
            )

    def _run(self, codes: Codes, ledger: ZCDPLedger, rng: Rng, progress: Progress) -> None:
        cfg = self.config
        cols = list(self.domains)
        sizes = {c: self.domains[c].cells for c in cols}
        d = len(cols)
        work = workload_cliques(cols, cfg.workload, cfg.degree, cfg.target)
        cand = _candidates(work, cols)
        truth = {r: marginal(codes, r, sizes) for r in cand}
        rho = ledger.rho_left
        rounds = 16 * d
        sigma = math.sqrt(rounds / (2.0 * ALPHA * rho))
        eps = math.sqrt(8.0 * (1.0 - ALPHA) * rho / rounds)
        ms: list[Measurement] = [
            measure(codes, (c,), sizes, sigma, rng, ledger, f"1-way:{c}") for c in cols
        ]
        post_rng = np.random.default_rng(0)  # sampling the model: post-processing only

        def fit(warm: GraphicalModel | None, iters: int) -> GraphicalModel:
            return GraphicalModel(
                cols, sizes, [(m.clique, m.noisy, m.sigma) for m in ms], warm
            ).fit(iters)

        model = fit(None, cfg.round_iters)
        used = ledger.rho_spent - (ledger.target_rho - rho)  # spent by AIM so far
        r_no = 0
        final = False
        while not final:
            rest = rho - used
            if rest <= 1e-12 * rho:
                break
            if rest < 2 * (1.0 / (2 * sigma**2) + eps**2 / 8):
                sigma = math.sqrt(1.0 / (2.0 * ALPHA * rest))
                eps = math.sqrt(8.0 * (1.0 - ALPHA) * rest)
                final = True
            if cfg.max_rounds is not None and r_no + 1 >= cfg.max_rounds and not final:
                sigma = math.sqrt(1.0 / (2.0 * ALPHA * rest))
                eps = math.sqrt(8.0 * (1.0 - ALPHA) * rest)
                final = True
            limit = cfg.max_model_size * (used / rho)
            measured = list(dict.fromkeys(m.clique for m in ms))
            small = [
                r for r in cand if r in measured or model_size(cols, sizes, [*measured, r]) <= limit
            ]
            sample = None
            scores = np.empty(len(small))
            for i, r in enumerate(small):
                est = model.project(r)
                if est is None:
                    if sample is None:
                        sample = model.sample(max(100_000, int(4 * model.total)), post_rng)
                        scale = model.total / len(next(iter(sample.values())))
                    est = marginal(sample, r, sizes) * scale
                n_r = truth[r].size
                scores[i] = cand[r] * (np.abs(truth[r] - est).sum() - BIAS * sigma * n_r)
            sens = max(cand[r] for r in small)
            k = exponential_select(scores, eps, sens, rng)
            r = small[k]
            r_no += 1
            ledger.exponential(
                f"select:{r_no}",
                eps,
                sensitivity=sens,
                clique=list(r),
                note=f"exponential mechanism over {len(small)} candidates within the size limit",
            )
            ms.append(measure(codes, r, sizes, sigma, rng, ledger, f"measure:{r_no}:{'|'.join(r)}"))
            used += eps**2 / 8 + 1.0 / (2 * sigma**2)
            before = model.project(r)
            if before is None:
                assert sample is not None
                before = marginal(sample, r, sizes) * scale
            model = fit(model, cfg.round_iters)
            after = model.project(r)
            assert after is not None
            self.selected.append(
                {
                    "round": r_no,
                    "clique": list(r),
                    "sigma": sigma,
                    "epsilon_select": eps,
                    "rho": eps**2 / 8 + 1.0 / (2 * sigma**2),
                    "candidates": len(small),
                }
            )
            progress(f"aim: round {r_no} ({'|'.join(r)})")
            if np.abs(after - before).sum() <= BIAS * sigma * truth[r].size:
                sigma /= 2.0
                eps *= 2.0
        # the final model is fitted afresh from the measurements alone (MarginalSynth.fit), so a
        # model rebuilt from the saved state samples the same rows
        self.measurements = ms
