"""Fixtures of the sweep tests: the built-in label-noise sweep, run once per test session."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tamis.pipelines.store import Store


@pytest.fixture(scope="session")
def label_noise_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Sweep 1 as shipped (5 seeds), then the same sweep again: the rerun must train nothing."""
    from tamis.pipelines.sweeps import run_sweep

    root = tmp_path_factory.mktemp("label_noise")
    store = Store(root / "store")
    uri = str(root / "mlruns")
    first = run_sweep("label_noise", store, tracking_uri=uri)
    second = run_sweep("label_noise", store, tracking_uri=uri)
    return {"store": store, "first": first, "second": second, "root": root, "mlruns": Path(uri)}
