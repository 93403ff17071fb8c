"""Step `dp_aim`: AIM adaptive marginal-based DP synthesis (zCDP accounting, privacy ledger)."""

from __future__ import annotations

from tamis.pipelines.steps.dp_mst import MarginalStep
from tamis.privacy.dp_marginal.aim import AIMConfig
from tamis.privacy.dp_marginal.base import MarginalSynth


class DPAIMStep(MarginalStep[AIMConfig]):
    """AIM (McKenna et al. 2022): 1-way marginals, then rounds that pick a workload marginal with
    the exponential mechanism (scored on the current model's error), measure it, refit the
    graphical model, and anneal the noise; rows from the final model. zCDP ledger."""

    name = "dp_aim"
    Params = AIMConfig

    def model(self, params: AIMConfig) -> MarginalSynth:
        from tamis.privacy.dp_marginal.aim import AIM

        return AIM(params)
