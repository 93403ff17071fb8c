"""Correctness bars of the built-in label-noise sweep (scikit-learn digits, offline)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.sweeps import load_sweep_result, render_sweep_table


def _row(result: dict[str, Any], version: str, metric: str) -> dict[str, Any]:
    return next(r for r in result["table"] if r["version"] == version and r["metric"] == metric)


def test_noisy_below_clean_beyond_test_set_noise_and_cleaning_recovers(
    label_noise_runs: dict[str, Any],
) -> None:
    result = label_noise_runs["first"]
    assert result["computed"] == 15 and result["skipped"] == 0
    recovered = {}
    for metric in ("precision", "recall", "f1", "accuracy"):
        clean, noisy, cleaned = (_row(result, v, metric) for v in ("clean", "noisy", "cleaned"))
        assert clean["n"] == noisy["n"] == cleaned["n"] == 5
        # the clean model is deterministic (sd 0 over seeds) yet its CI has the width of the
        # test set's sampling error (539 rows)
        assert clean["sd"] < 1e-12 and clean["ci_high"] - clean["ci_low"] > 0.01, metric
        # paired by test row and seed, the noise costs F1 beyond the resampling noise
        assert noisy["delta_ci_high"] < 0 and noisy["p"] < 0.01, metric
        assert noisy["ci_method"].startswith("bootstrap")
        gap = clean["mean"] - noisy["mean"]
        recovered[metric] = (cleaned["mean"] - noisy["mean"]) / gap
        assert recovered[metric] > 0.2, (metric, recovered)  # cleaning recovers part of the gap
        assert cleaned["mean"] > noisy["mean"]
    print("share of the noise gap recovered by label_issues:", recovered)


def test_rerun_trains_nothing_and_returns_the_same_table(label_noise_runs: dict[str, Any]) -> None:
    first, second = label_noise_runs["first"], label_noise_runs["second"]
    assert second["computed"] == 0 and second["skipped"] == 15
    assert second["timings"]["cell_seconds_sum"] == 0
    assert second["sweep_id"] == first["sweep_id"]
    assert second["table"] == first["table"]
    assert [c["key"] for c in second["cells"]] == [c["key"] for c in first["cells"]]


def test_results_are_in_the_store_catalog_and_mlflow(
    label_noise_runs: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    store, result = label_noise_runs["store"], label_noise_runs["first"]
    runs = store.catalog.query("SELECT kind, count(*) AS n FROM runs GROUP BY kind")
    kinds = {r["kind"]: r["n"] for r in runs}
    assert kinds["sweep_cell"] == 15 and kinds["sweep"] == 1
    for cell in result["cells"]:
        assert (store.runs_dir / "cells" / cell["key"] / "result.json").exists()
    loaded = load_sweep_result(store, "sweep/label_noise")
    assert loaded is not None and loaded["table"] == result["table"]
    assert load_sweep_result(store, result["sweep_id"][:8])["sweep_id"] == result["sweep_id"]
    assert load_sweep_result(store, "adult/nothing") is None
    assert render_sweep_table(loaded).row_count == 18  # 3 versions x 6 metrics
    html = (store.runs_dir / "sweeps" / result["sweep_id"] / "report.html").read_text()
    assert "data:image/png;base64" in html and "http" not in html.replace("http-equiv", "")
    assert (store.runs_dir / "sweeps" / result["sweep_id"] / "metrics.png").exists()
    # MLflow: one parent run per sweep invocation, one child per cell, version ids as params
    track = result["tracking"]
    assert track["error"] is None and track["parent_run_id"]
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading the embedded file store
    client = MlflowClient(tracking_uri=track["uri"])
    exp = client.get_experiment_by_name("tamis-sweep-label_noise")
    children = client.search_runs(
        [exp.experiment_id], f"tags.mlflow.parentRunId = '{track['parent_run_id']}'"
    )
    assert len(children) == 15
    ids = {c.data.params["data_version_id"] for c in children}
    assert ids == {c["data_id"] for c in result["cells"]}
    assert all("f1" in c.data.metrics for c in children)


def test_cli_show_and_sweep_json(label_noise_runs: dict[str, Any]) -> None:
    store, result = label_noise_runs["store"], label_noise_runs["first"]
    runner = CliRunner()
    shown = runner.invoke(app, ["show", "sweep/label_noise", "--store", str(store.root), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["table"] == result["table"]
    text = runner.invoke(app, ["show", "label_noise", "--store", str(store.root)])
    assert text.exit_code == 0 and "noisy" in text.stdout and "average_precision" in text.stdout
    rerun = runner.invoke(
        app,
        [
            "sweep",
            "label_noise",
            "--store",
            str(store.root),
            "--json",
            "--no-tracking",
            "--no-report",
        ],
    )
    assert rerun.exit_code == 0, rerun.output
    doc = json.loads(rerun.stdout)
    assert doc["computed"] == 0 and doc["table"] == result["table"]
