"""The marginal (density) membership attack (issue 17): its score against an independent
computation with pandas, and where it is the strongest attack: a marginal-based synthesizer."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.marginal import Discretizer, marginal_scorer

FAST = {"quality": False, "disclosure": False, "pii_scan": False, "n_boot": 0}


def _expected(
    syn: pd.DataFrame, ref: pd.DataFrame, rows: pd.DataFrame, alpha: float
) -> list[float]:
    """sum over column pairs of log p_syn - log p_ref, add-alpha, counted with pandas."""
    cols = list(syn.columns)
    both = pd.concat([syn, ref])
    # cells per column: the attacker's distinct values + one unseen + one missing code
    k = {c: both[c].dropna().nunique() + 2 for c in cols}
    out = []
    for _, r in rows.iterrows():
        total = 0.0
        for i, a in enumerate(cols):
            for b in cols[i + 1 :]:
                cells = k[a] * k[b]
                logs = []
                for d in (syn, ref):
                    same_a = d[a].isna() if pd.isna(r[a]) else d[a] == r[a]
                    same_b = d[b].isna() if pd.isna(r[b]) else d[b] == r[b]
                    c = int((same_a & same_b).sum())
                    logs.append(math.log((c + alpha) / (len(d) + alpha * cells)))
                total += logs[0] - logs[1]
        out.append(total)
    return out


def test_marginal_score_matches_pandas_counts() -> None:
    rng = np.random.default_rng(0)

    def frame(n: int, p: list[float]) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "a": rng.choice(["x", "y", "z"], n, p=p),
                "b": rng.choice(["u", "v"], n),
                "c": rng.choice(["k", "l", "m", "n"], n),
            }
        ).with_columns(
            pl.when(pl.Series(rng.random(n) < 0.1)).then(None).otherwise(pl.col("b")).alias("b")
        )

    syn, ref = frame(400, [0.6, 0.3, 0.1]), frame(300, [0.2, 0.3, 0.5])
    rows = pl.concat(
        [frame(20, [0.3, 0.3, 0.4]), pl.DataFrame({"a": ["w"], "b": [None], "c": ["k"]})]
    )
    for alpha in (0.5, 2.0):
        got = marginal_scorer(syn, ref, alpha=alpha)(rows)
        want = _expected(syn.to_pandas(), ref.to_pandas(), rows.to_pandas(), alpha)
        assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_numeric_bins_are_the_attackers_quantiles() -> None:
    x = pl.DataFrame({"v": [float(i) for i in range(100)] + [None, float("nan")]})
    d = Discretizer.fit(x, bins=4)
    edges = np.quantile(np.arange(100.0), [0.25, 0.5, 0.75])
    assert d.edges["v"] == pytest.approx(edges)
    codes = d.transform(pl.DataFrame({"v": [0.0, 30.0, 60.0, 99.0, None, -5.0]}))[:, 0]
    assert codes.tolist() == [0, 1, 2, 3, 4, 0] and d.sizes["v"] == 5


def _chain_synth(train: pl.DataFrame, n: int, seed: int) -> pl.DataFrame:
    """A noiseless marginal synthesizer: the exact 2-way marginals of neighbouring columns
    (a chain, as MST's tree), sampled in order; a bin decodes to a training value in it."""
    rng = np.random.default_rng(seed)
    codes = Discretizer.fit(train, bins=20).transform(train)
    out = np.empty((n, codes.shape[1]), dtype=np.int64)
    out[:, 0] = codes[rng.integers(0, len(codes), n), 0]
    for j in range(1, codes.shape[1]):
        for v in np.unique(out[:, j - 1]):
            rows = np.flatnonzero(out[:, j - 1] == v)
            src = codes[codes[:, j - 1] == v, j]
            out[rows, j] = src[rng.integers(0, len(src), len(rows))]
    cols = {}
    for j, c in enumerate(train.columns):
        vals = train[c].to_numpy()
        res = np.empty(n, dtype=object)
        for v in np.unique(out[:, j]):
            rows = np.flatnonzero(out[:, j] == v)
            src = vals[codes[:, j] == v]
            res[rows] = src[rng.integers(0, len(src), len(rows))]
        cols[c] = pl.Series(c, res.tolist(), dtype=train.schema[c], strict=False)
    return pl.DataFrame(cols)


def test_marginal_attack_is_the_strongest_against_a_marginal_synthesizer(
    adult_tr: pl.DataFrame,
) -> None:
    pool = adult_tr.sample(fraction=1.0, shuffle=True, seed=10)
    train, holdout = pool[:1000], pool[1000:3000]
    synthetic = _chain_synth(train, 20000, 0)
    cols = train.columns
    chain = [[cols[j - 1], cols[j]] for j in range(1, len(cols))]
    cfg = AuditConfig(**FAST, n_eval=1000, marginal={"marginals": chain})
    rep = run_audit(train, synthetic, holdout, cfg).report
    mia = rep["mia"]
    # no synthetic row is a copy's neighbour more than an unseen row's: distance sees little
    assert mia["marginal"]["auc"] > max(mia["distance"]["auc"], mia["domias"]["auc"]) + 0.05
    assert mia["worst"]["auc_attack"] == "marginal" and mia["worst"]["auc_ci_low"] > 0.55
    assert mia["marginal"]["marginals"] == chain
    assert rep["metrics"]["mia.marginal.auc"] == mia["marginal"]["auc"]
    # all 2-way marginals (the attacker does not know the model's): weaker, still above chance
    cfg = AuditConfig(**FAST, n_eval=1000)
    assert run_audit(train, synthetic, holdout, cfg).report["mia"]["marginal"]["auc"] > 0.54


def test_unknown_marginal_column_is_a_clear_error(adult_tr: pl.DataFrame) -> None:
    from tamis.errors import DataError

    cfg = AuditConfig(**FAST, n_eval=100, marginal={"marginals": [["age", "sexx"]]})
    with pytest.raises(DataError, match="marginal.marginals") as e:
        run_audit(adult_tr[:300], adult_tr[300:600], adult_tr[600:900], cfg)
    assert e.value.column == "sexx"


def test_released_marginals_are_read_from_a_version_report() -> None:
    from tamis.privacy.audit.marginal import released_marginals

    manifest = {
        "report": {
            "selected": [
                {"round": 1, "clique": ["age", "sex"]},
                {"round": 2, "clique": ["sex", "income"], "rho": 0.1},
                {"round": 3, "clique": ["age", "sex"]},  # measured twice: attacked once
                {"round": 4, "clique": ["age", "not_audited"]},
                {"round": 5},
                "junk",
            ]
        }
    }
    cols = ["age", "sex", "income"]
    assert released_marginals(manifest, cols) == [["age", "sex"], ["sex", "income"]]
    assert released_marginals(None, cols) == [] == released_marginals({"report": {}}, cols)


@pytest.mark.slow
def test_tamis_audit_attacks_the_marginals_a_dp_mst_version_measured(
    tmp_path: object, adult_tr: pl.DataFrame
) -> None:
    """dp_mst at a very large epsilon (nearly the exact tree marginals): `tamis audit` on the
    store ref reads the measured cliques from the version's report and attacks them."""
    import json
    from pathlib import Path

    from typer.testing import CliRunner

    from tamis.cli import app
    from tamis.pipelines.registry import get_step_type
    from tamis.pipelines.runner import build
    from tamis.pipelines.spec import parse_pipeline
    from tamis.pipelines.store import Store

    try:
        get_step_type("dp_mst")
        from tamis.privacy.dp_marginal.adult_meta import ADULT_COLUMNS
    except Exception:  # noqa: BLE001
        pytest.skip("dp_mst is not available")
    tmp = Path(str(tmp_path))
    pool = adult_tr.sample(fraction=1.0, shuffle=True, seed=10)
    pool[:1000].write_parquet(tmp / "real.parquet")
    pool[1000:3000].write_parquet(tmp / "hold.parquet")
    spec = {
        "name": "rel",
        "sources": {"real": {"path": "real.parquet"}},
        "steps": {
            "synth": {
                "use": "dp_mst",
                "input": "real",
                "params": {
                    "epsilon": 1000.0,
                    "estimator": "tree",
                    "rows": 20000,
                    "columns": ADULT_COLUMNS,
                },
            }
        },
    }
    store = Store(tmp / "st")
    build(parse_pipeline(spec, base_dir=str(tmp)), store)
    cliques = [s["clique"] for s in store.manifest("rel/synth")["report"]["selected"]]
    policy = tmp / "policy.yaml"
    policy.write_text(
        "audit: {quality: false, disclosure: false, pii_scan: false, n_eval: 1000, n_boot: 0}\n"
        "thresholds: {mia.worst.auc: {max: 0.6, bound: ci_high}}\n"
    )
    res = CliRunner().invoke(
        app,
        [
            "audit",
            str(tmp / "real.parquet"),
            "rel/synth",
            "--holdout",
            str(tmp / "hold.parquet"),
            "--policy",
            str(policy),
            "--store",
            str(tmp / "st"),
            "--json",
        ],
    )
    doc = json.loads(res.stdout)
    mia = doc["audit"]["mia"]
    assert mia["marginal"]["marginals"] == cliques
    assert mia["marginal"]["auc"] > mia["distance"]["auc"] + 0.03
    assert mia["worst"]["auc_attack"] == "marginal"
