"""Zero-concentrated DP (zCDP) accounting for the marginal mechanisms, in the privacy-ledger format.

Neighbouring datasets: add or remove one row. Every mechanism here is one of

- a Gaussian mechanism on a vector query of L2 sensitivity `s` with noise `sigma`:
  rho = s^2 / (2 sigma^2)  (Bun & Steinke 2016, Prop. 1.6);
- an exponential mechanism run with parameter `epsilon` on a score of sensitivity `s`
  (probability proportional to exp(epsilon * score / (2 s))): rho = epsilon^2 / 8
  (Cesar & Rogers 2021, bounded range; the bound MST and AIM use).

zCDP composes by adding rho. The composed rho is converted to (epsilon, delta) with the conversion of
Canonne, Kamath & Steinke (2020, Prop. 12), which is tighter than the classic
epsilon = rho + 2 sqrt(rho ln(1/delta)) (both are computed; the ledger reports the tighter one):

    epsilon(rho, delta) = inf_{alpha > 1} alpha rho + (ln(1/delta) + (alpha - 1) ln(1 - 1/alpha)
                                                     - ln(alpha)) / (alpha - 1)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from tamis.errors import PrivacyError
from tamis.privacy.budget import CheckedLedger

__all__ = [
    "ZCDPLedger",
    "ZMechanism",
    "classic_epsilon",
    "epsilon_from_rho",
    "exponential_rho",
    "gaussian_rho",
    "rho_from_epsilon",
]


def gaussian_rho(sigma: float, sensitivity: float = 1.0) -> float:
    """rho of a Gaussian mechanism with L2 sensitivity `sensitivity` and noise sd `sigma`."""
    if sigma <= 0:
        return math.inf
    return sensitivity * sensitivity / (2.0 * sigma * sigma)


def exponential_rho(epsilon: float) -> float:
    """rho of an epsilon-exponential mechanism (bounded range: epsilon^2 / 8)."""
    return epsilon * epsilon / 8.0


def classic_epsilon(rho: float, delta: float) -> float:
    """The standard conversion rho + 2 sqrt(rho ln(1/delta)) (Bun & Steinke 2016, Prop. 1.3)."""
    return rho + 2.0 * math.sqrt(rho * math.log(1.0 / delta))


def _cks(alpha: float, rho: float, delta: float) -> float:
    return alpha * rho + (
        math.log(1.0 / delta) + (alpha - 1.0) * math.log1p(-1.0 / alpha) - math.log(alpha)
    ) / (alpha - 1.0)


def epsilon_from_rho(rho: float, delta: float) -> float:
    """Canonne-Kamath-Steinke conversion of rho-zCDP to (epsilon, delta)-DP (never above classic)."""
    if rho <= 0:
        return 0.0
    if not math.isfinite(rho):
        return math.inf
    from scipy.optimize import minimize_scalar

    # the objective is unimodal in log(alpha - 1); bracket around the classic optimum
    a0 = 1.0 + math.sqrt(math.log(1.0 / delta) / rho)
    res = minimize_scalar(
        lambda t: _cks(1.0 + math.exp(t), rho, delta),
        bounds=(math.log(1e-6), math.log(max(10.0 * a0, 1e3))),
        method="bounded",
        options={"xatol": 1e-10},
    )
    eps = float(min(res.fun, _cks(a0, rho, delta)))
    return max(0.0, min(eps, classic_epsilon(rho, delta)))


def rho_from_epsilon(epsilon: float, delta: float) -> float:
    """The largest rho whose (CKS) conversion at `delta` is at most `epsilon`."""
    lo, hi = 0.0, max(1.0, epsilon)
    while epsilon_from_rho(hi, delta) <= epsilon:
        lo, hi = hi, 2 * hi
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if epsilon_from_rho(mid, delta) <= epsilon else (lo, mid)
    return lo


@dataclass
class ZMechanism:
    """One accounted access to private data (a ledger row)."""

    name: str
    #: "gaussian" (a noisy marginal or histogram) or "exponential" (a selection)
    kind: str
    rho: float
    #: sigma / sensitivity for Gaussians (None for selections)
    noise_multiplier: float | None = None
    #: the exponential mechanism's epsilon (None for Gaussians)
    epsilon: float | None = None
    sensitivity: float = 1.0
    #: the marginal measured or selected (column names)
    clique: list[str] | None = None
    column: str | None = None
    cells: int | None = None
    note: str = ""
    sample_rate: float = 1.0
    steps: int = 1
    delta_extra: float = 0.0
    #: this row's epsilon on its own at the ledger's delta (filled by the ledger)
    epsilon_alone: float | None = None


@dataclass
class ZCDPLedger(CheckedLedger):
    """Rows of zCDP mechanisms on one private dataset; the total is checked against the target."""

    overrun_fix: ClassVar[str] = "raise epsilon or measure fewer marginals"

    target_epsilon: float
    target_delta: float
    mechanisms: list[ZMechanism] = field(default_factory=list)
    accountant: str = "zcdp"

    def __post_init__(self) -> None:
        self.target_rho = rho_from_epsilon(self.target_epsilon, self.target_delta)

    @property
    def rho_spent(self) -> float:
        return math.fsum(m.rho for m in self.mechanisms)

    @property
    def rho_left(self) -> float:
        return max(0.0, self.target_rho - self.rho_spent)

    def _charge(self, m: ZMechanism) -> ZMechanism:
        if self.rho_spent + m.rho > self.target_rho * (1 + 1e-9) + 1e-15:
            raise PrivacyError(
                f"mechanism '{m.name}' (rho={m.rho:.4g}) would take the composed rho to"
                f" {self.rho_spent + m.rho:.4g}, above the target rho={self.target_rho:.4g}"
                f" (epsilon={self.target_epsilon:g}, delta={self.target_delta:.3g})",
                field="epsilon",
                fix="raise epsilon or lower the number of measured marginals",
                details={"ledger": self.to_dict(with_total=False)},
            )
        self.mechanisms.append(m)
        return m

    def gaussian(
        self, name: str, sigma: float, *, sensitivity: float = 1.0, **kw: Any
    ) -> ZMechanism:
        rho = gaussian_rho(sigma, sensitivity)
        return self._charge(
            ZMechanism(name, "gaussian", rho, noise_multiplier=sigma / sensitivity, **kw)
        )

    def exponential(
        self, name: str, epsilon: float, *, sensitivity: float = 1.0, **kw: Any
    ) -> ZMechanism:
        m = ZMechanism(
            name, "exponential", exponential_rho(epsilon), epsilon=epsilon, sensitivity=sensitivity
        )
        for k, v in kw.items():
            setattr(m, k, v)
        return self._charge(m)

    def total(self) -> dict[str, Any]:
        rho = self.rho_spent
        eps = epsilon_from_rho(rho, self.target_delta)
        return {
            "rho": rho,
            "target_rho": self.target_rho,
            "epsilon": eps,
            "epsilon_classic_conversion": classic_epsilon(rho, self.target_delta),
            "delta": self.target_delta,
            "accountant": self.accountant,
            "conversion": "Canonne-Kamath-Steinke 2020 (tighter than rho + 2 sqrt(rho ln 1/delta))",
            **self.against_target(eps),
        }

    def loss_text(self, total: dict[str, Any]) -> str:
        return (
            f"rho={total['rho']:.4g} (epsilon={total['epsilon']:.4g},"
            f" delta={self.target_delta:.3g})"
        )

    def to_dict(self, *, with_total: bool = True) -> dict[str, Any]:
        rows = []
        for m in self.mechanisms:
            m.epsilon_alone = epsilon_from_rho(m.rho, self.target_delta)
            rows.append(asdict(m))
        out: dict[str, Any] = {
            "accountant": self.accountant,
            "neighbouring": "add/remove one row",
            "composition": "zCDP: rho adds up over all mechanisms; the total rho is converted"
            " to (epsilon, delta) with the Canonne-Kamath-Steinke bound",
            "mechanisms": rows,
        }
        if with_total:
            out["total"] = self.total()
        return out
