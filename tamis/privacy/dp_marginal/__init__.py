"""Marginal-based differentially private synthesis: MST and AIM with zCDP accounting.

    from tamis.privacy.dp_marginal import MST, AIM, AIMConfig, MarginalConfig
    model = MST(MarginalConfig(epsilon=1.0, columns=public_metadata)).fit(df)
    rows = model.sample(10_000, seed=0)
    model.ledger.to_dict()     # every measurement and selection, rho, the (epsilon, delta) total

See docs/dp_marginal.md.
"""

from tamis.privacy.dp_marginal.aim import AIM, AIMConfig
from tamis.privacy.dp_marginal.base import MarginalSynth, workload_error
from tamis.privacy.dp_marginal.config import MarginalColumnMeta, MarginalConfig
from tamis.privacy.dp_marginal.estimation import mbi_available
from tamis.privacy.dp_marginal.mechanisms import Measurement
from tamis.privacy.dp_marginal.mst import MST
from tamis.privacy.dp_marginal.zcdp import (
    ZCDPLedger,
    classic_epsilon,
    epsilon_from_rho,
    exponential_rho,
    gaussian_rho,
    rho_from_epsilon,
)

__all__ = [
    "AIM",
    "AIMConfig",
    "MST",
    "MarginalColumnMeta",
    "MarginalConfig",
    "MarginalSynth",
    "Measurement",
    "ZCDPLedger",
    "classic_epsilon",
    "epsilon_from_rho",
    "exponential_rho",
    "gaussian_rho",
    "mbi_available",
    "rho_from_epsilon",
    "workload_error",
]
