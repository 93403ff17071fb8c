"""`MarginalSynth`, the base of MST and AIM: fit (domain + mechanism), estimation, sampling.

The split that keeps sampling away from private rows: `fit` encodes the private frame into cell
indices, hands them to the mechanism (which returns only noisy marginals and the choices it made),
and drops them. Everything after that -- estimation of a graphical model (mbi), sampling and
decoding -- is a function of the noisy measurements and the public domain only (post-processing),
and the fitted model keeps nothing else (`MarginalSynth.to_dict` is its whole state).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import PrivacyError
from tamis.privacy.dp_marginal.config import MarginalConfig
from tamis.privacy.dp_marginal.domain import ColumnDomain, build_domains, decode, encode
from tamis.privacy.dp_marginal.engine import GraphicalModel, model_size
from tamis.privacy.dp_marginal.estimation import (
    estimate,
    require_mbi,
    sample_tree,
)
from tamis.privacy.dp_marginal.mechanisms import (
    Clique,
    Codes,
    Measurement,
    Progress,
    Rng,
    marginal,
)
from tamis.privacy.dp_marginal.zcdp import ZCDPLedger
from tamis.privacy.ledger import validate_budget

#: how the mechanisms draw their randomness (public metadata for the report)
NOISE_SOURCE = (
    "OS CSPRNG (tamis.privacy.dp.secure.secure_numpy_rng: 128 bits from Python secrets seed a PCG64"
    " generator), fresh per fit, never stored; the seed drives only sampling and decoding"
)


class MarginalSynth:
    """Base class: fit = domain + mechanism (private rows), then estimation and sampling
    (post-processing of the noisy measurements only)."""

    mechanism = ""
    #: the config model of this mechanism (AIM's adds the workload and rounds)
    config_model: type[MarginalConfig] = MarginalConfig

    def __init__(self, config: MarginalConfig) -> None:
        self.config = config
        self.domains: dict[str, ColumnDomain] = {}
        self.measurements: list[Measurement] = []
        self.selected: list[dict[str, Any]] = []
        self.ledger: ZCDPLedger | None = None
        self.stats: dict[str, Any] = {}
        #: wall-clock timings, kept in memory only (benchmarks)
        self.timings: dict[str, float] = {}
        self._model: Any = None

    # -- private part ------------------------------------------------------------------------
    def _check(self) -> None:
        cfg = self.config
        if cfg.estimator == "mbi":
            require_mbi(f"{self.mechanism} with estimator=mbi")

    def _run(self, codes: Codes, ledger: ZCDPLedger, rng: Rng, progress: Progress) -> None:
        raise NotImplementedError

    def fit(
        self,
        df: pl.DataFrame,
        progress: Callable[..., None] | None = None,
        _noise_rng: np.random.Generator | None = None,
    ) -> MarginalSynth:
        """Measure `df` under the budget. `_noise_rng` is for tests only (the default, and the
        only source the step uses, is a fresh OS-CSPRNG-seeded generator)."""
        from tamis.privacy.dp.secure import secure_numpy_rng

        prog = progress or (lambda *a, **k: None)
        cfg = self.config
        self._check()
        if df.width == 0:
            raise PrivacyError("the input has no columns", field="input")
        delta = validate_budget(cfg.epsilon, cfg.delta, df.height)
        ledger = ZCDPLedger(cfg.epsilon, delta)
        rng = _noise_rng if _noise_rng is not None else secure_numpy_rng()
        t0 = time.perf_counter()
        self.domains = build_domains(df, cfg.columns, cfg.bins, ledger, cfg.domain_fraction, rng)
        codes = encode(df, self.domains)
        self._run(codes, ledger, rng, prog)
        del codes, rng
        ledger.check()
        self.ledger = ledger
        self.timings["measure_select"] = time.perf_counter() - t0
        if self._model is None and self._engine() != "tree":
            t1 = time.perf_counter()
            self._model = self._estimate()
            self.timings["estimate"] = time.perf_counter() - t1
        self.timings["fit"] = time.perf_counter() - t0
        self.stats.update(
            {
                "mechanism": self.mechanism,
                "rows": df.height,
                "measurements": len(self.measurements),
                "noise_source": NOISE_SOURCE,
                "estimator": self._engine(),
                "model_size_mb": self.model_size(),
            }
        )
        return self

    def _engine(self) -> str:
        """numpy (default: tamis' Private-PGM estimator), mbi, or tree (MST: no estimation)."""
        return "numpy" if self.config.estimator == "auto" else self.config.estimator

    def _estimate(self) -> Any:
        if self._engine() == "mbi":
            return estimate(self.domains, self.measurements, self.config.iters)
        sizes = {c: d.cells for c, d in self.domains.items()}
        return GraphicalModel(
            list(self.domains), sizes, [(m.clique, m.noisy, m.sigma) for m in self.measurements]
        ).fit(self.config.iters)

    # -- post-processing ---------------------------------------------------------------------
    def model_size(self) -> float:
        """Megabytes of the junction tree of the measured cliques (float64 tables)."""
        cl = list(dict.fromkeys(m.clique for m in self.measurements))
        sizes = {c: d.cells for c, d in self.domains.items()}
        return model_size(list(self.domains), sizes, cl)

    def sample(self, n: int, seed: int = 0) -> pl.DataFrame:
        """n synthetic rows from the noisy measurements (post-processing, reproducible by seed)."""
        if not self.measurements:
            raise PrivacyError("the model is not fitted", field="model", fix="call fit first")
        rng = np.random.default_rng(seed)
        engine = self._engine()
        if engine != "tree" and self._model is None:
            self._model = self._estimate()
        if engine == "numpy":
            codes = self._model.sample(n, rng)
        elif engine == "mbi":
            state = np.random.get_state()
            np.random.seed(seed % 2**32)  # mbi draws from NumPy's global generator
            try:
                data = self._model.synthetic_data(n).to_dict()
            finally:
                np.random.set_state(state)
            codes = {c: np.asarray(data[c], dtype=np.int64) for c in self.domains}
        else:
            codes = sample_tree(self.domains, self.measurements, n, rng)
        return decode(codes, self.domains, rng)

    def to_dict(self) -> dict[str, Any]:
        """The model's whole state: public domain, noisy measurements, choices, ledger."""
        cfg = self.config.model_dump(mode="json", exclude={"columns"})
        return {
            "mechanism": self.mechanism,
            "config": cfg,
            "domains": [d.to_dict() for d in self.domains.values()],
            "measurements": [m.to_dict() for m in self.measurements],
            "selected": self.selected,
            "ledger": self.ledger.to_dict() if self.ledger else None,
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> MarginalSynth:
        known = cls.config_model.model_fields
        model = cls(cls.config_model(**{k: v for k, v in state["config"].items() if k in known}))
        model.domains = {d["name"]: ColumnDomain.from_dict(d) for d in state["domains"]}
        model.measurements = [Measurement.from_dict(m) for m in state["measurements"]]
        model.selected = list(state["selected"])
        model.stats = dict(state["stats"])
        return model


def workload_error(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    domains: dict[str, ColumnDomain],
    workload: list[Clique],
) -> float:
    """Mean over the workload of the L1 distance between the real and synthetic marginals, both
    normalised to sum 1 (in [0, 2]). Reads real rows: an audit figure, never released by a step."""
    sizes = {c: d.cells for c, d in domains.items()}
    a, b = encode(real, domains), encode(synthetic, domains)
    errs = []
    for cl in workload:
        x, y = marginal(a, cl, sizes), marginal(b, cl, sizes)
        errs.append(float(np.abs(x / x.sum() - y / y.sum()).sum()))
    return float(np.mean(errs)) if errs else math.nan
