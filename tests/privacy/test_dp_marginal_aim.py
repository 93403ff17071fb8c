"""The `dp_aim` step and tamis' graphical-model estimator."""

from __future__ import annotations

import itertools
import json

import numpy as np
import polars as pl
import pytest

from tamis.errors import PrivacyError
from tamis.pipelines.runner import run_step
from tamis.privacy.dp_marginal import mbi_available
from tamis.privacy.dp_marginal.aim import AIM, AIMConfig, workload_cliques
from tamis.privacy.dp_marginal.base import MarginalConfig
from tamis.privacy.dp_marginal.engine import GraphicalModel
from tamis.privacy.dp_marginal.zcdp import rho_from_epsilon

META = {
    "n": {"bounds": [0, 9]},
    "c": {"categories": ["x", "y", "z"]},
    "g": {"categories": ["a", "b"]},
    "y": {"categories": ["0", "1"]},
}


def _frame(n: int = 2000, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    nn = rng.integers(0, 10, n)
    c = rng.choice(["x", "y", "z"], n)
    g = np.where(rng.random(n) < 0.8, np.where(c == "x", "a", "b"), "a")
    y = ((nn > 5) ^ (g == "b") ^ (rng.random(n) < 0.1)).astype(int).astype(str)
    return pl.DataFrame({"n": nn, "c": c.tolist(), "g": g.tolist(), "y": y.tolist()})


def test_engine_matches_exact_marginals_and_brute_force() -> None:
    """Given exact (noise-free) marginals on a cycle, the fitted model reproduces them, and its
    belief-propagation marginals equal brute-force sums of the full joint of its potentials."""
    rng = np.random.default_rng(0)
    attrs = ["a", "b", "c", "d"]
    sizes = {"a": 3, "b": 4, "c": 2, "d": 5}
    joint = rng.random((3, 4, 2, 5)) ** 3
    joint = 1000 * joint / joint.sum()

    def marg(arr: np.ndarray, cl: tuple[str, ...]) -> np.ndarray:
        return arr.sum(axis=tuple(i for i, a in enumerate(attrs) if a not in cl)).ravel()

    cls: list[tuple[str, ...]] = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "d")]
    g = GraphicalModel(attrs, sizes, [(cl, marg(joint, cl), 1.0) for cl in cls]).fit(500)
    for cl in cls:
        est = g.project(cl)
        assert est is not None and np.allclose(est, marg(joint, cl), atol=1e-6)
    theta = np.zeros((3, 4, 2, 5))
    for cl, th in g.theta.items():
        theta = theta + th.reshape([sizes[a] if a in cl else 1 for a in attrs])
    q = np.exp(theta - theta.max())
    q = g.total * q / q.sum()
    for i, k in enumerate(g.tree):
        assert np.allclose(g.mu[i].ravel(), marg(q, k), atol=1e-8)
    s = g.sample(100_000, np.random.default_rng(1))
    emp = np.bincount(np.ravel_multi_index([s["a"], s["b"]], [3, 4]), minlength=12)
    ab = g.project(("a", "b"))
    assert ab is not None and np.abs(emp / 100_000 - ab / g.total).sum() < 0.02


def test_workload_and_target() -> None:
    cols = ["n", "c", "g", "y"]
    assert workload_cliques(cols, None, 2, None) == list(itertools.combinations(cols, 2))
    w = workload_cliques(cols, None, 2, "y")
    assert ("n", "c", "y") in w and ("c", "g", "y") in w and len(w) == 6 + 3
    assert workload_cliques(cols, [["g", "n"]], 2, None) == [("n", "g")]
    with pytest.raises(PrivacyError) as e:
        workload_cliques(cols, [["n", "nope"]], 2, None)
    assert e.value.field == "workload"
    with pytest.raises(PrivacyError) as e:
        workload_cliques(cols, None, 2, "nope")
    assert e.value.field == "target"


def test_step_ledger_spends_exactly_the_budget() -> None:
    params = {
        "epsilon": 1.0,
        "columns": META,
        "target": "y",
        "rows": 500,
        "round_iters": 20,
        "iters": 200,
    }
    out = run_step("dp_aim", {"input": _frame()}, params, seed=1)
    data = out.frames["data"]
    assert (
        isinstance(data, pl.DataFrame)
        and data.height == 500
        and data.columns == ["n", "c", "g", "y"]
    )
    assert set(data["y"].drop_nulls().to_list()) <= {"0", "1"}
    n = data["n"].drop_nulls().to_numpy()
    assert n.min() >= 0 and n.max() <= 9
    led = out.report["privacy_ledger"]
    rows = led["mechanisms"]
    assert [m["kind"] for m in rows[:4]] == ["gaussian"] * 4  # the 1-way marginals
    sel = [m for m in rows if m["kind"] == "exponential"]
    assert len(sel) == len(out.report["selected"]) >= 1
    rho = sum(
        1 / (2 * m["noise_multiplier"] ** 2) if m["kind"] == "gaussian" else m["epsilon"] ** 2 / 8
        for m in rows
    )
    assert rho == pytest.approx(rho_from_epsilon(1.0, min(1e-5, 0.1 / 2000)), rel=1e-9)
    assert led["total"]["within_target"] and out.report["epsilon_spent"] <= 1.0 + 1e-9
    # every selection is followed by its measurement
    names = [m["name"] for m in rows[4:]]
    assert all(
        a.startswith("select:") and b.startswith("measure:")
        for a, b in zip(names[::2], names[1::2], strict=True)
    )


def test_aim_sampler_reads_only_the_noisy_marginals() -> None:
    cfg = AIMConfig(epsilon=2.0, columns=META, target="y", round_iters=20, iters=200)
    df = _frame()
    a = AIM(cfg).fit(df, _noise_rng=np.random.default_rng(3))
    b = AIM.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b.sample(300, seed=4).equals(a.sample(300, seed=4))
    c = AIM(cfg).fit(df.reverse(), _noise_rng=np.random.default_rng(3))
    assert c.selected == a.selected and c.sample(300, seed=4).equals(a.sample(300, seed=4))


def test_aim_refusals() -> None:
    with pytest.raises(PrivacyError) as e:
        run_step("dp_aim", {"input": _frame()}, {"columns": META, "estimator": "tree"})
    assert e.value.field == "estimator"
    with pytest.raises(PrivacyError) as e:
        run_step("dp_aim", {"input": _frame()}, {"columns": {**META, "g": {}}})
    assert e.value.field == "columns.g.categories"


@pytest.mark.slow  # JAX compilation (~20 s on the shared machine)
@pytest.mark.skipif(not mbi_available(), reason="mbi (tamis[dp]) not installed")
def test_engine_agrees_with_mbi() -> None:
    """The same noisy measurements give (nearly) the same model in mbi's estimator and ours."""
    from tamis.privacy.dp_marginal.base import estimate
    from tamis.privacy.dp_marginal.mst import MST

    cfg = MarginalConfig(epsilon=1.0, columns=META, estimator="tree")
    m = MST(cfg).fit(_frame(), _noise_rng=np.random.default_rng(5))
    sizes = {c: d.cells for c, d in m.domains.items()}
    ours = GraphicalModel(
        list(m.domains), sizes, [(x.clique, x.noisy, x.sigma) for x in m.measurements]
    ).fit(3000)
    theirs = estimate(m.domains, m.measurements, 3000)
    for x in m.measurements:
        a = ours.project(x.clique)
        assert a is not None
        b = np.asarray(theirs.project(x.clique).datavector())
        assert np.abs(a - b).sum() / ours.total < 0.02
