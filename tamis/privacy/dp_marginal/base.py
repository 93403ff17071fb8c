"""Measurements, the exponential mechanism, estimation and sampling shared by MST and AIM.

The split that keeps sampling away from private rows: `fit` encodes the private frame into cell
indices, hands them to the mechanism (which returns only noisy marginals and the choices it made),
and drops them. Everything after that -- estimation of a graphical model (mbi), sampling and
decoding -- is a function of the noisy measurements and the public domain only (post-processing),
and the fitted model keeps nothing else (`MarginalSynth.to_dict` is its whole state).
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.errors import MissingDependencyError, PrivacyError
from tamis.privacy.dp_marginal.domain import ColumnDomain, build_domains, decode, encode
from tamis.privacy.dp_marginal.engine import GraphicalModel, model_size
from tamis.privacy.dp_marginal.zcdp import ZCDPLedger
from tamis.privacy.ledger import validate_budget

Clique = tuple[str, ...]

#: how the mechanisms draw their randomness (public metadata for the report)
NOISE_SOURCE = (
    "OS CSPRNG (tamis.privacy.dp.ctgan.secure_numpy_rng: 128 bits from Python secrets seed a PCG64"
    " generator), fresh per fit, never stored; the seed drives only sampling and decoding"
)


@dataclass
class Measurement:
    """A noisy marginal: counts over the clique's cells (C order) plus N(0, sigma^2) noise."""

    clique: Clique
    noisy: np.ndarray
    sigma: float

    def to_dict(self) -> dict[str, Any]:
        return {"clique": list(self.clique), "sigma": self.sigma, "noisy": self.noisy.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Measurement:
        return cls(tuple(d["clique"]), np.asarray(d["noisy"], dtype=np.float64), float(d["sigma"]))


def marginal(codes: dict[str, np.ndarray], clique: Clique, sizes: dict[str, int]) -> np.ndarray:
    """Exact counts of a marginal (flat, C order over the clique's cells)."""
    shape = [sizes[c] for c in clique]
    idx = np.ravel_multi_index([codes[c] for c in clique], shape)
    return np.bincount(idx, minlength=int(np.prod(shape))).astype(np.float64)


def canonical(clique: Clique | list[str], order: list[str]) -> Clique:
    """A clique's columns in table order (so flat vectors match mbi's factor layout)."""
    pos = {c: i for i, c in enumerate(order)}
    return tuple(sorted(set(clique), key=pos.__getitem__))


def measure(
    codes: dict[str, np.ndarray],
    clique: Clique,
    sizes: dict[str, int],
    sigma: float,
    rng: np.random.Generator,
    ledger: ZCDPLedger,
    name: str,
) -> Measurement:
    """Gaussian mechanism on one marginal (L2 sensitivity 1: one row moves one count by 1)."""
    cells = int(np.prod([sizes[c] for c in clique]))
    ledger.gaussian(name, sigma, clique=list(clique), cells=cells)  # charged before it runs
    counts = marginal(codes, clique, sizes)
    return Measurement(clique, counts + rng.normal(0.0, sigma, size=counts.shape), sigma)


def exponential_select(
    scores: np.ndarray, epsilon: float, sensitivity: float, rng: np.random.Generator
) -> int:
    """Index drawn with probability proportional to exp(epsilon * score / (2 * sensitivity)).

    Gumbel-max: argmax of the scaled scores plus independent standard Gumbel noise has exactly
    that distribution."""
    z = epsilon * np.asarray(scores, dtype=np.float64) / (2.0 * sensitivity)
    return int(np.argmax(z + rng.gumbel(size=len(z))))


def mbi_available() -> bool:
    return (
        importlib.util.find_spec("mbi") is not None and importlib.util.find_spec("jax") is not None
    )


def require_mbi(what: str) -> None:
    if not mbi_available():
        raise MissingDependencyError(
            f"{what} needs mbi (Private-PGM) and jax, which are not installed",
            fix="pip install 'tamis[dp]'",
        )


def _mbi() -> Any:
    import warnings

    import jax

    jax.config.update("jax_enable_x64", True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import mbi
    return mbi


def mbi_domain(domains: dict[str, ColumnDomain]) -> Any:
    mbi = _mbi()
    return mbi.Domain(list(domains), [d.cells for d in domains.values()])


def estimate(
    domains: dict[str, ColumnDomain],
    measurements: list[Measurement],
    iters: int,
    warm_start: Any = None,
) -> Any:
    """A graphical model (mbi MarkovRandomField) fitted to the noisy measurements only."""
    mbi = _mbi()
    dom = mbi_domain(domains)
    ms = [
        mbi.LinearMeasurement(np.asarray(m.noisy), m.clique, stddev=float(m.sigma))
        for m in measurements
    ]
    return mbi.estimation.MirrorDescent().estimate(dom, ms, iters=iters, warm_start=warm_start)


def model_marginal(model: Any, clique: Clique) -> np.ndarray:
    return np.asarray(model.project(clique).datavector(flatten=True), dtype=np.float64)


def _nonneg(x: np.ndarray) -> np.ndarray:
    """Projection onto non-negative weights summing to 1 (uniform when nothing is left)."""
    y = np.maximum(np.asarray(x, dtype=np.float64), 0.0)
    s = y.sum()
    return y / s if s > 0 else np.full(len(y), 1.0 / len(y))


def sample_tree(
    domains: dict[str, ColumnDomain],
    measurements: list[Measurement],
    n: int,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Rows drawn along a forest of 2-way measurements, from the noisy marginals only.

    Each tree's root comes from its noisy 1-way marginal, every other column from its noisy 2-way
    marginal with its parent, conditioned on the parent's drawn cell (negative counts set to 0).
    Columns in no 2-way measurement are drawn from their 1-way marginal."""
    cols = list(domains)
    sizes = {c: domains[c].cells for c in cols}
    one = {m.clique[0]: m.noisy for m in measurements if len(m.clique) == 1}
    adj: dict[str, list[tuple[str, Measurement]]] = {c: [] for c in cols}
    for m in measurements:
        if len(m.clique) == 2:
            a, b = m.clique
            adj[a].append((b, m))
            adj[b].append((a, m))
    out: dict[str, np.ndarray] = {}
    for root in cols:
        if root in out:
            continue
        p = _nonneg(one[root]) if root in one else np.full(sizes[root], 1.0 / sizes[root])
        out[root] = rng.choice(sizes[root], size=n, p=p)
        queue = deque([root])
        while queue:
            parent = queue.popleft()
            for child, m in adj[parent]:
                if child in out:
                    continue
                table = np.maximum(m.noisy.reshape(sizes[m.clique[0]], sizes[m.clique[1]]), 0)
                if m.clique[0] == child:
                    table = table.T  # rows: parent's cells
                fallback = _nonneg(one[child]) if child in one else None
                col = np.empty(n, dtype=np.int64)
                for v in np.unique(out[parent]):
                    rows = np.flatnonzero(out[parent] == v)
                    w = table[v]
                    pr = (
                        w / w.sum()
                        if w.sum() > 0
                        else (fallback if fallback is not None else np.full(len(w), 1.0 / len(w)))
                    )
                    col[rows] = rng.choice(len(w), size=len(rows), p=pr)
                out[child] = col
                queue.append(child)
    return out


class MarginalColumnMeta(Config):
    """Public facts about one column (never learned from the private data)."""

    type: Literal["continuous", "categorical"] | None = Field(
        default=None, description="column kind (default: numbers continuous, the rest categorical)"
    )
    bounds: tuple[float, float] | None = Field(
        default=None,
        description="public [low, high] of a continuous column (else learned with DP from"
        " domain_fraction, or refused)",
    )
    categories: list[Any] | None = Field(
        default=None, description="public category domain (required for categorical columns)"
    )


class MarginalConfig(Config):
    """Settings of MST (the `dp_mst` step's params); AIM adds its own (`AIMConfig`)."""

    epsilon: float = Field(default=1.0, description="target epsilon of the whole step (> 0)")
    delta: float | None = Field(
        default=None, description="target delta (< 1/n); default min(1e-5, 0.1/n)"
    )
    rows: int | None = Field(default=None, ge=1, description="rows to sample (default: input rows)")
    bins: int = Field(default=32, ge=2, description="equal-width public bins per numeric column")
    columns: dict[str, MarginalColumnMeta] = Field(
        default_factory=dict, description="public metadata per column: type, bounds, categories"
    )
    domain_fraction: float = Field(
        default=0.0,
        description="share of the budget spent learning missing numeric bounds (0: refuse them)",
    )
    estimator: Literal["auto", "numpy", "mbi", "tree"] = Field(
        default="auto",
        description="auto = numpy (graphical model, no JAX), mbi (Private-PGM, JAX), tree (MST only)",
    )
    iters: int = Field(default=1000, ge=1, description="mbi estimation iterations")


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

    def _run(
        self,
        codes: dict[str, np.ndarray],
        ledger: ZCDPLedger,
        rng: np.random.Generator,
        progress: Callable[..., None],
    ) -> None:
        raise NotImplementedError

    def fit(
        self,
        df: pl.DataFrame,
        progress: Callable[..., None] | None = None,
        _noise_rng: np.random.Generator | None = None,
    ) -> MarginalSynth:
        """Measure `df` under the budget. `_noise_rng` is for tests only (the default, and the
        only source the step uses, is a fresh OS-CSPRNG-seeded generator)."""
        from tamis.privacy.dp.ctgan import secure_numpy_rng

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
