"""The release gate (policy YAML), the `privacy_audit` step and `tamis audit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner, Result

from tamis.cli import app
from tamis.errors import GateFailed, SpecError
from tamis.pipelines.runner import build
from tamis.pipelines.spec import parse_pipeline
from tamis.pipelines.store import Store
from tamis.privacy.audit.gate import evaluate_gate, load_policy, parse_policy

runner = CliRunner()
FAST = {"quality": False, "disclosure": False, "n_eval": 200, "n_boot": 30}


def test_policy_validation(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="at least one threshold"):
        parse_policy({"thresholds": {}})
    with pytest.raises(SpecError) as e:
        parse_policy({"audit": {"quasi_ids": ["a"]}, "thresholds": {"x": {"max": 1}}})
    assert "quasi_identifiers" in (e.value.fix or "")
    with pytest.raises(SpecError, match="min or max"):
        parse_policy({"thresholds": {"x": {"bound": "ci_high"}}})
    with pytest.raises(SpecError, match="not found"):
        load_policy(tmp_path / "nope.yaml")
    pol = parse_policy(
        {
            "thresholds": {
                "mia.distance.auc": {"max": 0.6, "bound": "ci_high"},
                "quality.score": {"min": 0.8},
                "exact_match_rate": {"max": 0.0},
                "mia.distanse.auc": {"max": 0.6},
            }
        }
    )
    metrics = {
        "mia.distance.auc": 0.55,
        "mia.distance.auc_ci_high": 0.62,
        "quality.score": 0.9,
        "exact_match_rate": 0.0,
    }
    gate = evaluate_gate(metrics, pol)
    assert not gate["passed"]
    failed = {c["check"]: c for c in gate["failed"]}
    assert set(failed) == {"mia.distance.auc", "mia.distanse.auc"}
    assert "0.62" in failed["mia.distance.auc"]["reason"]
    assert "did you mean mia.distance.auc" in failed["mia.distanse.auc"]["reason"]


def _files(tmp_path: Path, adult_tr: pl.DataFrame, adult_te: pl.DataFrame) -> dict[str, Path]:
    paths = {
        "real": tmp_path / "real.parquet",
        "copy": tmp_path / "copy.parquet",
        "indep": tmp_path / "indep.parquet",
        "hold": tmp_path / "hold.parquet",
    }
    adult_tr.head(1500).write_parquet(paths["real"])
    adult_tr.head(1500).write_parquet(paths["copy"])
    adult_tr[1500:3000].write_parquet(paths["indep"])
    adult_tr[3000:4500].write_parquet(paths["hold"])
    policy = {
        "audit": {**FAST, "quasi_identifiers": ["age", "sex", "race"], "sensitive": ["income"]},
        "thresholds": {
            "exact_match_rate": {"max": 0.01},
            "mia.distance.auc": {"max": 0.6, "bound": "ci_high"},
            "dcr.closer_to_train_share": {"max": 0.6},
            "pii.columns_flagged": {"max": 0},
        },
    }
    paths["policy"] = tmp_path / "policy.yaml"
    paths["policy"].write_text(yaml.safe_dump(policy))
    return paths


def _audit(p: dict[str, Path], synthetic: str, *options: str) -> Result:
    """`tamis audit` of the real file against `p[synthetic]`, with the holdout and the policy."""
    real, syn, hold, policy = (str(p[k]) for k in ("real", synthetic, "hold", "policy"))
    return runner.invoke(app, ["audit", real, syn, "--holdout", hold, "--policy", policy, *options])


def test_cli_audit_pass_and_fail(
    tmp_path: Path, adult_tr: pl.DataFrame, adult_te: pl.DataFrame
) -> None:
    p = _files(tmp_path, adult_tr, adult_te)
    html = tmp_path / "out" / "audit.html"
    ok = _audit(p, "indep", "--json", "--html", str(html))
    assert ok.exit_code == 0, ok.output
    doc = json.loads(ok.stdout)
    assert doc["passed"] and len(doc["gate"]["checks"]) == 4
    assert doc["audit"]["k_anonymity"]["k"] >= 1 and "linkage" in doc["audit"]
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "data:image/png;base64" in page
    assert "http://" not in page and "https://" not in page
    # the attack-first sections: the worst case over the attacks and the most exposed records
    assert "Worst case over 3 attacks" in page and "Most exposed training records" in page
    assert json.loads(html.with_suffix(".json").read_text())["passed"] is True

    bad = _audit(p, "copy")
    assert bad.exit_code == 3, bad.output
    for name in ("exact_match_rate", "mia.distance.auc", "dcr.closer_to_train_share"):
        assert name in bad.output
    bad_json = _audit(p, "copy", "--json")
    assert bad_json.exit_code == 3
    doc = json.loads(bad_json.stdout)  # exactly one JSON document
    assert doc["passed"] is False and len(doc["gate"]["failed"]) == 3


def test_cli_audit_needs_a_policy(tmp_path: Path) -> None:
    r = runner.invoke(app, ["audit", "a.parquet", "b.parquet", "--holdout", "c.parquet"])
    assert r.exit_code == 2 and "--policy" in r.output
    (tmp_path / "p.yaml").write_text("thresholds: {exact_match_rate: {max: 0}}\n")
    r = runner.invoke(
        app,
        [
            "audit",
            str(tmp_path / "a.parquet"),
            "b",
            "--holdout",
            "c",
            "--policy",
            str(tmp_path / "p.yaml"),
        ],
    )
    assert r.exit_code == 1 and "does not exist" in r.output


def test_privacy_audit_step_in_a_pipeline(
    tmp_path: Path, adult_tr: pl.DataFrame, adult_te: pl.DataFrame
) -> None:
    p = _files(tmp_path, adult_tr, adult_te)
    spec: dict[str, Any] = {
        "name": "rel",
        "sources": {
            "real": {"path": "real.parquet"},
            "hold": {"path": "hold.parquet"},
            "indep": {"path": "indep.parquet"},
            "copy": {"path": "copy.parquet"},
        },
        "steps": {
            "audit_ok": {
                "use": "privacy_audit",
                "real": "real",
                "synthetic": "indep",
                "holdout": "hold",
                "params": {"policy": "policy.yaml"},
            },
            "audit_warn": {
                "use": "privacy_audit",
                "real": "real",
                "synthetic": "copy",
                "holdout": "hold",
                "params": {"policy": "policy.yaml", "on_failure": "warn"},
            },
        },
    }
    store = Store(tmp_path / "st")
    build(parse_pipeline(spec, base_dir=str(tmp_path)), store)
    ok = store.manifest("rel/audit_ok")
    assert ok["report"]["gate"]["passed"] and ok["rows"] == 1500
    assert set(ok["artifacts"]) == {"audit.html", "audit.json"} and ok["tables"] == ["dcr"]
    # the audited version is the synthetic data, unchanged
    assert store.read("rel/audit_ok").equals(pl.read_parquet(p["indep"]))
    warn = store.manifest("rel/audit_warn")["report"]["gate"]
    assert not warn["passed"]
    spec["steps"] = {
        "audit_fail": {**spec["steps"]["audit_warn"], "params": {"policy": "policy.yaml"}}
    }
    with pytest.raises(GateFailed, match="exact_match_rate"):
        build(parse_pipeline(spec, base_dir=str(tmp_path)), store)


def test_html_report_shows_a_privacy_ledger(adult_tr: pl.DataFrame) -> None:
    from tamis.privacy.audit import AuditConfig, run_audit
    from tamis.privacy.audit.report import build_html

    res = run_audit(
        adult_tr.head(600),
        adult_tr[600:1200],
        adult_tr[1200:1800],
        AuditConfig(**{**FAST, "n_eval": 100}),
    )
    ledger = {
        "accountant": "prv",
        "mechanisms": [
            {"name": "dp_sgd_discriminator", "epsilon_alone": 2.7},
            {"name": "category_counts", "epsilon_alone": 0.3},
        ],
        "total": {"epsilon": 2.98, "delta": 1e-6},
    }
    page = build_html(res, gate=None, ledger=ledger)
    assert "Privacy ledger" in page and "dp_sgd_discriminator" in page and "2.98" in page
    assert "Privacy ledger" not in build_html(res)
