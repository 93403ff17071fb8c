"""The ledger accounts for the DP-SGD steps that actually ran.

Opacus' Poisson sampler runs `int(1 / q)` steps per epoch with q = 1 / ceil(n / batch_size); for
93 batches that is 92 (1 / (1 / 93) < 93 in floating point). The ledger must charge the steps that
ran, checked against Opacus' RDP analysis computed here independently from the real step count.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent  # noqa: E402

from tamis.privacy.dp.ctgan import DPCTGAN, DPCTGANConfig  # noqa: E402
from tamis.privacy.ledger import RDP_ORDERS  # noqa: E402


def _eps(q: float, sigma: float, steps: int, delta: float) -> float:
    rdp = compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=RDP_ORDERS)
    eps, _ = get_privacy_spent(orders=RDP_ORDERS, rdp=rdp, delta=delta)
    return float(eps)


def test_ledger_charges_the_steps_opacus_ran() -> None:
    n, batch = 930, 10  # 93 batches: Opacus runs int(1 / (1 / 93)) = 92 steps per epoch
    assert int(1 / (1 / 93)) == 92
    rng = np.random.default_rng(0)
    df = pl.DataFrame(
        {"a": rng.choice(["p", "q"], n).tolist(), "b": rng.choice(["r", "s", "t"], n).tolist()}
    )
    meta = {"columns": {"a": {"categories": ["p", "q"]}, "b": {"categories": ["r", "s", "t"]}}}
    cfg = DPCTGANConfig(
        epsilon=3.0,
        epochs=1,
        batch_size=batch,
        fake_batch_size=10,
        embedding_dim=4,
        generator_dim=[8],
        discriminator_dim=[8],
        generator_ema=0.0,
        threads=1,
        accountant="rdp",
        conditional="uniform",  # all metadata public: DP-SGD is the only mechanism
        columns=meta["columns"],
    )
    model = DPCTGAN(cfg).fit(df)
    assert model.ledger is not None
    (sgd,) = model.ledger.mechanisms
    ran = len(model.step_sizes)
    assert ran == 92
    assert sgd.steps == ran and model.stats["steps"] == ran
    assert sgd.sample_rate == pytest.approx(1 / 93)
    delta = model.ledger.accountant_delta()
    expected = _eps(sgd.sample_rate, sgd.noise_multiplier, ran, delta)
    total = model.ledger.to_dict()["total"]
    assert total["epsilon"] == pytest.approx(expected, rel=1e-9)
    assert total["epsilon"] <= 3.0
    # the step count matters: charging 93 steps would give a different (larger) epsilon
    assert _eps(sgd.sample_rate, sgd.noise_multiplier, 93, delta) > expected * (1 + 1e-6)
