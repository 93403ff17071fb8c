"""The `dp_ctgan` step: synthetic rows, the privacy ledger in the report, refusals with reasons."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from tamis.errors import PrivacyError  # noqa: E402
from tamis.pipelines.runner import run_step  # noqa: E402

TINY = {
    "epochs": 1,
    "batch_size": 100,
    "generator_dim": [16],
    "discriminator_dim": [16],
    "n_modes": 3,
    "threads": 1,
    "accountant": "rdp",
}


def _frame(n: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"n": rng.integers(0, 50, n), "c": rng.choice(["x", "y"], n).tolist()})


def test_step_writes_rows_ledger_and_model(tmp_path: Path) -> None:
    params = {**TINY, "epsilon": 2.0, "rows": 123, "columns": {"n": {"bounds": [0, 50]}}}
    out = run_step("dp_ctgan", {"input": _frame()}, params, seed=3, artifacts_dir=tmp_path)
    data = out.frames["data"]
    assert isinstance(data, pl.DataFrame) and data.height == 123 and data.columns == ["n", "c"]
    ledger = out.report["privacy_ledger"]
    assert ledger["total"]["epsilon"] <= 2.0 and out.report["epsilon_spent"] <= 2.0
    names = [m["name"] for m in ledger["mechanisms"]]
    assert "bounds:n" not in names and "modes:n" in names  # public bounds are not charged
    assert (tmp_path / "dp_ctgan" / "generator.pt").exists()


def test_step_refuses_a_broken_guarantee() -> None:
    with pytest.raises(PrivacyError, match="pac"):
        run_step("dp_ctgan", {"input": _frame()}, {**TINY, "pac": 10})
    with pytest.raises(PrivacyError, match="delta"):
        run_step("dp_ctgan", {"input": _frame()}, {**TINY, "delta": 0.01})
