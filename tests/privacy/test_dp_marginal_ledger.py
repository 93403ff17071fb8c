"""zCDP ledger of the marginal mechanisms: arithmetic against independent computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tamis.errors import PrivacyError
from tamis.privacy.dp_marginal import (
    ZCDPLedger,
    classic_epsilon,
    epsilon_from_rho,
    exponential_rho,
    gaussian_rho,
    rho_from_epsilon,
)


def test_gaussian_rho_matches_opacus_rdp_curve() -> None:
    """rho-zCDP means RDP(alpha) = alpha * rho for every alpha; Opacus' RDP of a full-batch
    Gaussian (q = 1) is computed independently from the Renyi divergence of two Gaussians."""
    opacus = pytest.importorskip("opacus")
    from opacus.accountants.analysis.rdp import compute_rdp

    for sigma in (0.7, 3.0, 25.0):
        orders = [1.5, 2.0, 8.0, 64.0]
        rdp = compute_rdp(q=1.0, noise_multiplier=sigma, steps=1, orders=orders)
        assert np.allclose(np.asarray(rdp) / np.asarray(orders), gaussian_rho(sigma))
        assert gaussian_rho(sigma) == pytest.approx(1 / (2 * sigma**2))
    assert gaussian_rho(2.0, sensitivity=3.0) == pytest.approx(9 / 8)
    assert opacus is not None


def test_exponential_rho_is_eps_squared_over_8() -> None:
    assert exponential_rho(0.4) == pytest.approx(0.02)


def test_conversion_equals_opacus_rdp_to_dp_and_beats_classic() -> None:
    """Canonne-Kamath-Steinke on the curve alpha*rho equals Opacus' RDP->DP conversion (the same
    bound of Balle et al. 2020) minimised over a dense grid of orders."""
    pytest.importorskip("opacus")
    from opacus.accountants.analysis.rdp import get_privacy_spent

    orders = np.exp(np.linspace(np.log(1.0001), np.log(1e5), 20000))
    for rho, delta in [(0.0306, 3e-6), (0.224, 1e-5), (1.78, 1e-6), (5e-4, 1e-5)]:
        eps_opacus, _ = get_privacy_spent(orders=orders, rdp=orders * rho, delta=delta)
        eps = epsilon_from_rho(rho, delta)
        assert eps == pytest.approx(float(eps_opacus), rel=1e-4)
        assert eps < classic_epsilon(rho, delta)
        assert classic_epsilon(rho, delta) == pytest.approx(
            rho + 2 * math.sqrt(rho * math.log(1 / delta))
        )


def test_rho_from_epsilon_inverts_the_conversion() -> None:
    for eps, delta in [(1.0, 3.07e-6), (3.0, 1e-5), (10.0, 1e-6)]:
        rho = rho_from_epsilon(eps, delta)
        assert epsilon_from_rho(rho, delta) == pytest.approx(eps, abs=1e-7)
        assert epsilon_from_rho(rho * 1.001, delta) > eps


def test_ledger_total_is_the_sum_of_rows_and_refuses_overruns() -> None:
    led = ZCDPLedger(1.0, 1e-5)
    led.gaussian("1-way:a", 10.0, clique=["a"], cells=3)
    led.exponential("select:1", 0.1, clique=["a", "b"])
    rho = 1 / 200 + 0.01 / 8
    tot = led.total()
    assert tot["rho"] == pytest.approx(rho)
    assert tot["epsilon"] == pytest.approx(epsilon_from_rho(rho, 1e-5))
    assert tot["within_target"] and led.check() == tot
    d = led.to_dict()
    assert [m["kind"] for m in d["mechanisms"]] == ["gaussian", "exponential"]
    assert d["mechanisms"][0]["rho"] == pytest.approx(0.005)
    with pytest.raises(PrivacyError, match="above the target rho"):
        led.gaussian("too much", 0.01)
    assert len(led.mechanisms) == 2  # the refused row was not run nor recorded
