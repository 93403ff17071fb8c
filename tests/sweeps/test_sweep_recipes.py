"""Recipes and helpers: LM adapters (flattening, curves), bundled datasets, optional MLflow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tamis.errors import SpecError
from tamis.pipelines.store import Store
from tamis.sweeps.datasets import load_bundled
from tamis.sweeps.engine import _dig
from tamis.sweeps.lm_recipes import curves_of, flatten_metrics
from tamis.sweeps.recipes import get_recipe, recipes


def test_every_recipe_is_registered() -> None:
    assert {"classifier", "tstr", "sft", "rm", "dpo", "ppo"} <= set(recipes())
    assert get_recipe("rm").has_curves and not get_recipe("rm").needs_test
    assert get_recipe("classifier").needs_test and not get_recipe("classifier").has_curves


def test_lm_summary_flattening_and_curves() -> None:
    summary = {
        "method": "rm",
        "accuracy": {"value": 0.9, "ci_low": 0.8, "ci_high": 0.95, "n": 100},
        "mean_margin": 1.5,
        "ok": True,
        "history": [{"step": 10, "loss": 0.7, "accuracy": 0.5}, {"step": 20, "loss": 0.4}],
    }
    metrics, extras = flatten_metrics(summary)
    assert metrics == {"accuracy": 0.9, "mean_margin": 1.5}
    assert extras["accuracy"]["ci_low"] == 0.8
    assert curves_of(summary["history"]) == {
        "loss": [[10.0, 0.7], [20.0, 0.4]],
        "accuracy": [[10.0, 0.5]],
    }


def test_dig_reads_nested_and_dotted_keys() -> None:
    report = {
        "mia": {"distance": {"auc": 0.61}},
        "metrics": {"mia.distance.auc": 0.61},
        "acc": {"value": 0.8},
        "rows": [{"x": 2}],
    }
    assert _dig(report, "mia.distance.auc") == 0.61
    assert _dig(report, "metrics.mia.distance.auc") == 0.61
    assert _dig(report, "acc") == 0.8 and _dig(report, "rows.0.x") == 2.0
    assert _dig(report, "mia.nope.auc") is None


def test_bundled_datasets_and_errors() -> None:
    fair = load_bundled(
        "statsmodels:fair", {"columns": {"y": "CAST(affairs > 0 AS INTEGER)"}, "drop": ["affairs"]}
    )
    assert fair.height == 6366 and "y" in fair.columns and "affairs" not in fair.columns
    with pytest.raises(SpecError, match="not a dataset bundled"):
        load_bundled("sklearn:covtype")  # fetch_* datasets need the network
    with pytest.raises(SpecError, match="unknown dataset loader"):
        load_bundled("kaggle:titanic")
    with pytest.raises(SpecError, match="cannot drop unknown column 'zz'"):
        load_bundled("sklearn:iris", {"drop": ["zz"]})


def test_sweep_without_mlflow_warns_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, iris_sweep: dict[str, Any]
) -> None:
    from tamis.sweeps import run_sweep, tracking
    from tamis.sweeps.spec import parse_sweep

    monkeypatch.setattr(tracking, "available", lambda: False)
    data = {
        **iris_sweep,
        "name": "iris_refs",
        "versions": {"a": "split.train", "b": {"step": "split.train", "params": {"C": 0.1}}},
    }
    with pytest.warns(UserWarning, match="mlflow is not installed"):
        out = run_sweep(parse_sweep(data), Store(tmp_path / "s"), tracking_uri=str(tmp_path / "m"))
    assert out["computed"] == 2 and "tracking" not in out
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_rm_recipe_sweep_on_tone_pairs(tmp_path: Path) -> None:
    """The preferences sweep shape with a tiny reward model: one seed, small data."""
    pytest.importorskip("trl")
    from tamis.sweeps import run_sweep

    out = run_sweep(
        "preferences",
        Store(tmp_path / "s"),
        overrides={
            "seeds": [0],
            "versions": {"raw": "raw", "curated": "curated", "balanced": "balanced"},
            "recipe": {"params": {"config": {"num_train_epochs": 1}}},
        },
    )
    assert out["computed"] == 3
    acc = {r["version"]: r["mean"] for r in out["table"] if r["metric"] == "accuracy"}
    assert acc["raw"] > 0.6  # 20% swapped labels still leave a learnable signal
    assert all(c["curves"] for c in out["cells"])
    assert "curves" in out["report"]["plots"]


@pytest.mark.slow
def test_synthetic_sweep_small(tmp_path: Path) -> None:
    """Sweep 2 wired end to end with tiny synthesizer settings (utility not meaningful here)."""
    pytest.importorskip("sdv")
    pytest.importorskip("opacus")
    from tamis.sweeps import run_sweep

    small = {"params": {"epochs": 1}}
    out = run_sweep(
        "synthetic",
        Store(tmp_path / "s"),
        overrides={
            "seeds": [0],
            "pipeline": {"steps": {"ctgan": small, "dp1": small, "dp3": small, "dp10": small}},
        },
    )
    rows = {(r["version"], r["metric"]): r for r in out["table"]}
    assert out["computed"] == 9
    # releasing the real rows is the worst case for membership inference
    assert rows[("real", "mia_auc")]["mean"] > rows[("dp_eps1", "mia_auc")]["mean"]
    # marginal-based DP synthesis (full settings: seconds on `fair`) beats DP-CTGAN at epsilon 1
    assert rows[("aim_eps1", "auc")]["mean"] > rows[("dp_eps1", "auc")]["mean"]
    assert rows[("real", "mia_auc")]["mean"] > rows[("aim_eps1", "mia_auc")]["mean"]
    assert rows[("real", "exact_match_rate")]["mean"] == pytest.approx(1.0)
    assert "tradeoff" in out["report"]["plots"]
