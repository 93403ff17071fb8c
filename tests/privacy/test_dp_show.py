"""QA (helper K): `tamis show` of a DP version says, in its table, that it is not deterministic.

Before, only `--json` carried `step.deterministic: false`; the table read `synth (dp_ctgan v1)`.
And the build no longer prints Opacus' "Secure RNG turned off ... turn it on and retrain before
production" warning, which contradicts the docs (the noise is seeded from the OS CSPRNG).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from typer.testing import CliRunner  # noqa: E402

from tamis.cli import app  # noqa: E402


def test_show_of_a_dp_version_says_not_deterministic(
    tmp_path: Path, dp_ctgan_pipeline: Callable[[int], str]
) -> None:
    rng = np.random.default_rng(0)
    pl.DataFrame(
        {"n": rng.integers(0, 50, 400), "c": rng.choice(["x", "y", "z"], 400).tolist()}
    ).write_parquet(tmp_path / "private.parquet")
    (tmp_path / "pipeline.yaml").write_text(dp_ctgan_pipeline(3))
    store = str(tmp_path / "st")
    runner = CliRunner()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = runner.invoke(app, ["build", str(tmp_path / "pipeline.yaml"), "--store", store])
    assert res.exit_code == 0, res.output
    assert not [w for w in caught if "Secure RNG turned off" in str(w.message)]
    res = runner.invoke(app, ["show", "dp/synth", "--store", store], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert "not deterministic" in res.output
    assert "privacy_ledger" in res.output and "all shown" in res.output
    src = runner.invoke(app, ["show", "dp/private", "--store", store], env={"COLUMNS": "200"})
    assert src.exit_code == 0 and "not deterministic" not in src.output
