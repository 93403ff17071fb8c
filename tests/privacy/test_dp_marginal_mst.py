"""The `dp_mst` step: ledger rows, refusals, decoding within the public domain, and sampling that
reads only the noisy marginals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tamis.errors import PrivacyError
from tamis.pipelines.runner import run_step
from tamis.privacy.dp_marginal import MST, MarginalConfig, mbi_available
from tamis.privacy.dp_marginal.base import MarginalSynth
from tamis.privacy.dp_marginal.zcdp import rho_from_epsilon

META = {
    "n": {"bounds": [0, 50]},
    "x": {"bounds": [-1.0, 1.0]},
    "c": {"categories": ["x", "y", "z"]},
    "g": {"categories": ["a", "b"]},
}


def _frame(n: int = 600, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    c = rng.choice(["x", "y", "z", "w"], n, p=[0.5, 0.3, 0.15, 0.05]).tolist()  # "w" not public
    g = np.where(rng.random(n) < 0.7, np.array(c) == "x", np.array(c) != "x")
    return pl.DataFrame(
        {
            "n": rng.integers(0, 80, n),  # some values above the public bound 50
            "x": pl.Series(
                [
                    None if u < 0.1 else v
                    for u, v in zip(rng.random(n), rng.normal(0, 2, n), strict=True)
                ],
                dtype=pl.Float64,
            ),
            "c": c,
            "g": np.where(g, "a", "b").tolist(),
        }
    )


def test_step_rows_ledger_and_budget(tmp_path: Path) -> None:
    params = {"epsilon": 2.0, "rows": 321, "columns": META, "bins": 8, "estimator": "tree"}
    out = run_step("dp_mst", {"input": _frame()}, params, seed=3, artifacts_dir=tmp_path)
    data = out.frames["data"]
    assert isinstance(data, pl.DataFrame) and data.height == 321
    assert data.columns == ["n", "x", "c", "g"] and data.schema["n"] == pl.Int64
    rep = out.report
    led = rep["privacy_ledger"]
    kinds = [m["kind"] for m in led["mechanisms"]]
    # d 1-way Gaussians, d-1 exponential selections, d-1 2-way Gaussians
    assert kinds == ["gaussian"] * 4 + ["exponential"] * 3 + ["gaussian"] * 3
    # independent recomputation of the composed rho from the recorded noise and epsilons
    rho = sum(
        1 / (2 * m["noise_multiplier"] ** 2) if m["kind"] == "gaussian" else m["epsilon"] ** 2 / 8
        for m in led["mechanisms"]
    )
    delta = min(1e-5, 0.1 / 600)
    assert rho == pytest.approx(rho_from_epsilon(2.0, delta), rel=1e-9)  # MST spends it all
    assert led["total"]["rho"] == pytest.approx(rho)
    assert led["total"]["epsilon"] <= 2.0 + 1e-9 and led["total"]["within_target"]
    assert rep["epsilon_spent"] <= 2.0 + 1e-9 and rep["delta"] == pytest.approx(delta)
    assert len(rep["selected"]) == 3 and all(len(s["clique"]) == 2 for s in rep["selected"])
    assert (tmp_path / "dp_mst.json").exists()
    from tamis.pipelines.steps.dp_mst import DPMSTStep

    assert DPMSTStep.deterministic is False


def test_decoding_stays_within_bounds_and_domain() -> None:
    m = MST(MarginalConfig(epsilon=1.0, columns=META, bins=8, estimator="tree")).fit(_frame())
    s = m.sample(2000, seed=1)
    n = s["n"].drop_nulls().to_numpy()
    assert n.min() >= 0 and n.max() <= 50
    x = s["x"].drop_nulls().to_numpy()
    assert x.min() >= -1.0 and x.max() <= 1.0
    assert set(s["c"].drop_nulls().to_list()) <= {"x", "y", "z"}  # never "w" (not public)
    assert set(s["g"].drop_nulls().to_list()) <= {"a", "b"}
    # integer bins: 0..50 has 51 values > 8 bins, so equal-width bins, rounded inside
    assert s.schema["n"] == pl.Int64


def test_sampling_reads_only_the_noisy_marginals() -> None:
    """The fitted model's state is the public domain, the noisy marginals and the choices. A
    model rebuilt from that state alone samples the same rows; the same noise on the same rows in
    another order gives the same model (no dependence on row order)."""
    df = _frame()
    cfg = MarginalConfig(epsilon=1.0, columns=META, bins=8, estimator="tree")
    a = MST(cfg).fit(df, _noise_rng=np.random.default_rng(7))
    for v in vars(a).values():  # nothing row-sized is kept
        assert not isinstance(v, (pl.DataFrame, pl.Series))
    state = json.loads(json.dumps(a.to_dict()))
    b = MST.from_dict(state)
    assert b.sample(500, seed=2).equals(a.sample(500, seed=2))
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=5)
    c = MST(cfg).fit(shuffled, _noise_rng=np.random.default_rng(7))
    assert c.sample(500, seed=2).equals(a.sample(500, seed=2))
    # change private rows after measuring: the sampler does not see them
    d = MST(cfg).fit(df, _noise_rng=np.random.default_rng(7))
    df = df.with_columns(pl.lit("x").alias("c"))
    assert d.sample(500, seed=2).equals(a.sample(500, seed=2))


def test_noise_is_fresh_per_fit() -> None:
    cfg = MarginalConfig(epsilon=1.0, columns=META, bins=8, estimator="tree")
    a, b = MST(cfg).fit(_frame()), MST(cfg).fit(_frame())
    assert not np.array_equal(a.measurements[0].noisy, b.measurements[0].noisy)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"columns": {**META, "c": {}}}, "columns.c.categories"),  # domain from private rows
        ({"columns": {k: v for k, v in META.items() if k != "n"}}, "columns.n.bounds"),
        ({"columns": META, "delta": 0.01}, "delta"),
        ({"columns": META, "epsilon": 0.0}, "epsilon"),
        ({"columns": {**META, "nope": {"bounds": [0, 1]}}}, "columns"),
        ({"columns": META, "domain_fraction": 1.0}, "domain_fraction"),
        ({"columns": {**META, "n": {"bounds": [5, 5]}}}, "columns.n.bounds"),
    ],
)
def test_refused_configurations_explain_themselves(params: dict, field: str) -> None:
    with pytest.raises(PrivacyError) as e:
        run_step("dp_mst", {"input": _frame()}, {"estimator": "tree", **params})
    assert e.value.field == field and e.value.fix


def test_learned_bounds_are_charged() -> None:
    cols = {k: v for k, v in META.items() if k not in ("n", "x")}
    m = MST(
        MarginalConfig(epsilon=1.0, columns=cols, bins=8, estimator="tree", domain_fraction=0.2)
    ).fit(_frame(2000))
    assert m.ledger is not None
    rows = {r.name: r for r in m.ledger.mechanisms}
    assert {"bounds:n", "bounds:x"} <= set(rows)
    spent = rows["bounds:n"].rho + rows["bounds:x"].rho
    assert spent == pytest.approx(0.2 * m.ledger.target_rho)
    assert m.ledger.rho_spent == pytest.approx(m.ledger.target_rho)
    assert m.domains["n"].source == "dp" and m.domains["n"].bounds is not None
    lo, hi = m.domains["n"].bounds
    s = m.sample(1000, seed=0)["n"].drop_nulls().to_numpy()
    assert lo <= s.min() and s.max() <= hi and math.isfinite(hi)


@pytest.mark.slow  # two JAX compilations (~15 s on the shared machine)
@pytest.mark.skipif(not mbi_available(), reason="mbi (tamis[dp]) not installed")
def test_mbi_estimation_from_the_noisy_marginals_only() -> None:
    df = _frame()
    cfg = MarginalConfig(epsilon=3.0, columns=META, bins=8, estimator="mbi", iters=100)
    a = MST(cfg).fit(df, _noise_rng=np.random.default_rng(1))
    b: MarginalSynth = MST.from_dict(json.loads(json.dumps(a.to_dict())))
    sa, sb = a.sample(400, seed=0), b.sample(400, seed=0)
    assert sa.equals(sb) and sa.height == 400
    assert set(sa["c"].drop_nulls().to_list()) <= {"x", "y", "z"}


@pytest.mark.slow  # two pipeline builds: 57 s on the loaded shared machine
def test_pipeline_builds_in_two_stores_differ_and_say_not_deterministic(tmp_path: Path) -> None:
    from tamis.pipelines.runner import build
    from tamis.pipelines.store import Store

    _frame().write_parquet(tmp_path / "private.parquet")
    spec = {
        "name": "dpm",
        "seed": 3,
        "sources": {"private": {"path": "private.parquet"}},
        "steps": {
            "synth": {
                "use": "dp_mst",
                "input": "private",
                "params": {"epsilon": 1.0, "bins": 8, "columns": META, "iters": 100},
            }
        },
    }
    (tmp_path / "p.yaml").write_text(json.dumps(spec))
    out = []
    for name in ("a", "b"):
        store = Store(tmp_path / name)
        man = build(tmp_path / "p.yaml", store).versions["synth"]
        art = store.version_dir(man["id"]) / "artifacts" / "dp_mst.json"
        out.append((man, json.loads(art.read_text()), store.read(man["id"])))
    (ma, sa, ra), (mb, sb, rb) = out
    assert ma["step"]["deterministic"] is False
    assert ma["id"] == mb["id"]  # the cache key stays (inputs, params, seed)
    assert sa["measurements"][0]["noisy"] != sb["measurements"][0]["noisy"]  # fresh noise
    assert not ra.equals(rb)
    assert ma["report"]["privacy_ledger"]["total"]["within_target"]


def test_adult_subsample_decodes_inside_the_public_metadata(adult_tr: pl.DataFrame) -> None:
    """Real messy rows ('?' as null, the blank last line dropped): every synthetic value is inside
    the data dictionary's categories or the public bounds, or null; dtypes are kept."""
    from tamis.privacy.dp_marginal.adult_meta import ADULT_COLUMNS

    df = adult_tr.sample(3000, seed=0)
    m = MST(MarginalConfig(epsilon=1.0, columns=ADULT_COLUMNS, estimator="tree")).fit(df)
    s = m.sample(3000, seed=0)
    assert s.schema == df.schema
    for c, meta in ADULT_COLUMNS.items():
        vals = s[c].drop_nulls()
        if "categories" in meta:
            assert set(vals.to_list()) <= set(meta["categories"]), c
        else:
            lo, hi = meta["bounds"]
            x = vals.to_numpy()
            assert x.min() >= lo and x.max() <= hi, c
    assert m.ledger is not None and m.ledger.check()["epsilon"] <= 1.0 + 1e-9
    assert len(m.ledger.mechanisms) == 15 + 14 + 14
