"""A privacy ledger: every access to private data, its noise, and the composed (epsilon, delta).

Every mechanism tamis runs on private rows is a (possibly subsampled) Gaussian mechanism with L2
sensitivity 1 in the add/remove-one-row neighbouring relation:

- a noisy histogram (one row changes one count by 1): Gaussian, sample rate 1, one step;
- DP-SGD on the discriminator: Poisson-subsampled Gaussian, `sample_rate` q, `steps` T.

The ledger composes all of them with one accountant (Opacus PRV or RDP) -- composition is done on
the privacy-loss distributions (PRV) or Renyi curves (RDP), never by adding epsilons. Mechanisms
that release a data-dependent set of keys (category domains learned by thresholding noisy counts)
add a `delta_extra` (the chance that a key held by a single row survives the threshold), which is
added to the accountant's delta. The total reported is `(epsilon, delta_accountant + sum
delta_extra)`; `check()` refuses anything above the target.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar, Literal

from tamis.errors import PrivacyError
from tamis.privacy.budget import CheckedLedger

Accountant = Literal["prv", "rdp"]
#: Renyi orders for the RDP accountant: Opacus' defaults plus large orders for small deltas.
RDP_ORDERS = [1 + x / 4.0 for x in range(1, 16)] + list(range(5, 64)) + [80, 128, 256, 512]


@dataclass
class Mechanism:
    """One accounted access to private data."""

    name: str
    #: "gaussian" (histogram, q=1, one step) or "subsampled_gaussian" (DP-SGD)
    kind: str
    noise_multiplier: float
    sample_rate: float = 1.0
    steps: int = 1
    #: extra delta outside the Gaussian (e.g. thresholded key release); 0 for plain Gaussians
    delta_extra: float = 0.0
    column: str | None = None
    note: str = ""
    #: this mechanism's epsilon on its own, at the ledger's accountant delta (filled by the ledger)
    epsilon_alone: float | None = None


def validate_budget(epsilon: float, delta: float | None, n: int) -> float:
    """Refuse epsilon <= 0 and delta >= 1/n; return delta (default: min(1e-5, 0.1/n) < 1/n)."""
    if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and epsilon > 0):
        raise PrivacyError(
            f"epsilon must be a finite number > 0, got {epsilon!r}",
            field="epsilon",
            fix="set epsilon to the privacy budget you can afford, e.g. 1, 3 or 10",
        )
    if n < 1:
        raise PrivacyError("cannot account privacy for an empty dataset", field="input")
    if delta is None:
        return min(1e-5, 0.1 / n)
    if not (0 < delta < 1.0 / n):
        raise PrivacyError(
            f"delta={delta:g} must be in (0, 1/n) = (0, {1.0 / n:.3g}) for n={n} rows: a delta of"
            " 1/n or more allows releasing a whole row",
            field="delta",
            fix=f"omit delta (default {min(1e-5, 0.1 / n):.3g}) or set it below {1.0 / n:.3g}",
        )
    return float(delta)


def _epsilon(history: list[tuple[float, float, int]], delta: float, accountant: str) -> float:
    """Composed epsilon of Gaussian / subsampled-Gaussian entries at `delta` (an upper bound)."""
    if not history:
        return 0.0
    if any(s <= 0 for s, _, _ in history):
        return math.inf
    merged = _merge(history)
    if len(merged) == 1 and merged[0][1] >= 1.0:  # one (composite) Gaussian: exact, closed form
        return gaussian_epsilon(1.0 / merged[0][0], delta)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if accountant == "rdp":
            from opacus.accountants import RDPAccountant

            acc = RDPAccountant()
            acc.history = list(history)
            return float(acc.get_epsilon(delta, alphas=RDP_ORDERS))
        from opacus.accountants import PRVAccountant

        prv = PRVAccountant()
        prv.history = list(history)
        try:
            return float(prv.get_epsilon(delta, eps_error=0.01))
        except (ValueError, RuntimeError):
            # PRV cannot represent some extreme settings; RDP is a valid (looser) upper bound.
            return _epsilon(history, delta, "rdp")


def gaussian_epsilon(mu: float, delta: float) -> float:
    """Exact epsilon of a Gaussian mechanism with sensitivity/sigma = mu at `delta` (Balle & Wang)."""
    from scipy.stats import norm

    def d(eps: float) -> float:  # exp(eps) * cdf(...) in log space: no overflow for large eps
        tail = math.exp(min(eps + float(norm.logcdf(-eps / mu - mu / 2)), 700.0))
        return float(norm.cdf(-eps / mu + mu / 2)) - tail

    if d(0.0) <= delta:
        return 0.0
    lo, hi = 0.0, 1.0
    while d(hi) > delta:
        lo, hi = hi, hi * 2
        if hi > 1e12:
            return math.inf
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if d(mid) > delta else (lo, mid)
    return hi


def _merge(history: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """k full-batch Gaussians with multipliers s_i compose exactly into one with (sum s_i^-2)^-1/2."""
    full = [(s, k) for s, q, k in history if q >= 1.0]
    rest = [(s, q, k) for s, q, k in history if q < 1.0]
    if not full:
        return rest
    inv = sum(k / (s * s) for s, k in full)
    return [(1.0 / math.sqrt(inv), 1.0, 1), *rest]


@dataclass
class PrivacyLedger(CheckedLedger):
    """The list of mechanisms run on one private dataset, and their composed guarantee."""

    overrun_fix: ClassVar[str] = (
        "raise epsilon, train for fewer epochs, use a smaller batch, or more noise"
    )

    target_epsilon: float
    target_delta: float
    accountant: Accountant = "prv"
    mechanisms: list[Mechanism] = field(default_factory=list)

    def add(self, mechanism: Mechanism) -> Mechanism:
        self.mechanisms.append(mechanism)
        return mechanism

    # -- accounting ---------------------------------------------------------------------------
    def history(self, extra: list[Mechanism] | None = None) -> list[tuple[float, float, int]]:
        mechs = self.mechanisms + (extra or [])
        return _merge([(m.noise_multiplier, m.sample_rate, m.steps) for m in mechs])

    def delta_extra(self, extra: list[Mechanism] | None = None) -> float:
        return sum(m.delta_extra for m in self.mechanisms + (extra or []))

    def accountant_delta(self) -> float:
        """The delta left for the accountant once the threshold deltas are paid."""
        return self.target_delta - self.delta_extra()

    def epsilon(self, extra: list[Mechanism] | None = None) -> float:
        d = self.target_delta - self.delta_extra(extra)
        if d <= 0:
            return math.inf
        return _epsilon(self.history(extra), d, self.accountant)

    def total(self) -> dict[str, Any]:
        eps = self.epsilon()
        return {
            "epsilon": eps,
            "delta": self.target_delta,
            "delta_accountant": self.accountant_delta(),
            "delta_extra": self.delta_extra(),
            "accountant": self.accountant,
            **self.against_target(eps),
        }

    def loss_text(self, total: dict[str, Any]) -> str:
        return (
            f"epsilon={total['epsilon']:.4g} (delta={self.target_delta:.3g},"
            f" {self.accountant.upper()} accountant)"
        )

    # -- calibration --------------------------------------------------------------------------
    def calibrate_histograms(self, k: int, epsilon: float) -> float:
        """Noise multiplier for k sensitivity-1 histograms that together cost `epsilon` alone."""
        if k <= 0:
            return math.inf
        delta = self.accountant_delta()
        lo, hi = 0.05, 1e5

        def cost(s: float) -> float:  # exact (analytic) Gaussian: k queries = one with s/sqrt(k)
            return gaussian_epsilon(math.sqrt(k) / s, delta)

        if cost(hi) > epsilon:
            raise PrivacyError(
                f"the preprocessing budget epsilon={epsilon:.3g} is too small to learn anything",
                field="preprocess_fraction",
                fix="raise preprocess_fraction or epsilon, or give bounds/categories in metadata",
            )
        for _ in range(60):
            mid = math.sqrt(lo * hi)
            lo, hi = (lo, mid) if cost(mid) <= epsilon else (mid, hi)
            if hi / lo < 1.002:
                break
        return hi

    def calibrate_sgd(self, sample_rate: float, steps: int, name: str = "dp_sgd") -> float:
        """Smallest DP-SGD noise multiplier keeping the composed total within the target."""
        delta = self.accountant_delta()
        if delta <= 0:
            raise PrivacyError(
                "the threshold deltas of learned category domains use up the whole delta",
                field="delta",
                fix="raise delta (still below 1/n) or give categories in metadata",
            )

        def total(s: float) -> float:
            return self.epsilon([Mechanism(name, "subsampled_gaussian", s, sample_rate, steps)])

        if self.epsilon() >= self.target_epsilon:
            raise PrivacyError(
                "preprocessing alone spends the whole budget",
                field="preprocess_fraction",
                fix="lower preprocess_fraction or give bounds/categories in metadata",
            )
        if self.accountant == "prv":  # bracket with the (looser, faster) RDP bound first
            rdp = PrivacyLedger(
                self.target_epsilon, self.target_delta, "rdp", list(self.mechanisms)
            )
            hi = rdp.calibrate_sgd(sample_rate, steps, name)
            lo = 0.6 * hi
            for _ in range(12):
                mid = 0.5 * (lo + hi)
                lo, hi = (lo, mid) if total(mid) <= self.target_epsilon else (mid, hi)
                if hi - lo < 1e-2 * hi:
                    break
            return hi
        lo, hi = 0.2, 2.0
        while total(hi) > self.target_epsilon:
            lo, hi = hi, hi * 2
            if hi > 1e4:
                raise PrivacyError(
                    f"no noise level fits {steps} DP-SGD steps into epsilon={self.target_epsilon:g}",
                    field="epochs",
                    fix="train for fewer epochs or raise epsilon",
                )
        if total(lo) <= self.target_epsilon:
            return lo
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if total(mid) <= self.target_epsilon else (mid, hi)
            if hi - lo < 2e-3:
                break
        return hi

    # -- reporting ----------------------------------------------------------------------------
    def to_dict(self, *, with_total: bool = True) -> dict[str, Any]:
        delta = max(self.accountant_delta(), 1e-300)
        rows = []
        for m in self.mechanisms:
            if m.epsilon_alone is None:
                m.epsilon_alone = _epsilon(
                    [(m.noise_multiplier, m.sample_rate, m.steps)], delta, self.accountant
                )
            rows.append(asdict(m))
        out: dict[str, Any] = {
            "accountant": self.accountant,
            "neighbouring": "add/remove one row",
            "composition": f"{self.accountant.upper()} accountant over all mechanisms jointly;"
            " delta = accountant delta + sum of threshold deltas",
            "mechanisms": rows,
        }
        if with_total:
            out["total"] = self.total()
        return out
