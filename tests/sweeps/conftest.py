"""Fixtures of the sweep tests: the built-in label-noise sweep, run once per test session, and a
small iris sweep spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tamis.pipelines.store import Store


@pytest.fixture(scope="session")
def label_noise_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Sweep 1 as shipped (5 seeds), then the same sweep again: the rerun must train nothing."""
    from tamis.sweeps import run_sweep

    root = tmp_path_factory.mktemp("label_noise")
    store = Store(root / "store")
    uri = str(root / "mlruns")
    first = run_sweep("label_noise", store, tracking_uri=uri)
    second = run_sweep("label_noise", store, tracking_uri=uri)
    return {"store": store, "first": first, "second": second, "root": root, "mlruns": Path(uri)}


@pytest.fixture
def iris_sweep() -> dict[str, Any]:
    """A small sweep spec (a fresh dict per test): sklearn's iris, a stratified 60/40 split, the
    `classifier` recipe on the training part, one seed."""
    return {
        "name": "iris",
        "recipe": {"use": "classifier", "params": {"target": "target"}},
        "seeds": [0],
        "datasets": {"iris": {"loader": "sklearn:iris"}},
        "pipeline": {
            "steps": {
                "split": {
                    "use": "split",
                    "input": "iris",
                    "params": {"fractions": {"train": 0.6, "test": 0.4}, "stratify": "target"},
                }
            }
        },
        "versions": {"full": "split.train"},
        "test": "split.test",
    }
