"""`tamis show` of a DP version lists every ledger row (it used to show the first 20 of 23,
hiding the DP-SGD row that carries almost all of epsilon)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from typer.testing import CliRunner  # noqa: E402

from tamis.cli import app  # noqa: E402

COLUMNS = [f"v{i}" for i in range(11)]  # bounds + modes each: 22 preprocessing mechanisms
PIPELINE = """
name: wide
seed: 0
sources:
  private: {path: private.parquet}
steps:
  synth:
    use: dp_ctgan
    input: private
    params:
      epochs: 1
      batch_size: 30
      generator_dim: [8]
      discriminator_dim: [8]
      n_modes: 2
      threads: 1
      accountant: rdp
      conditional: uniform
      columns: {c: {categories: [a, b]}}
"""


def test_show_lists_every_ledger_row(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    df = pl.DataFrame({c: rng.normal(i, 1 + i, 300) for i, c in enumerate(COLUMNS)})
    df = df.with_columns(pl.Series("c", rng.choice(["a", "b"], 300).tolist()))
    df.write_parquet(tmp_path / "private.parquet")
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    store = str(tmp_path / "store")
    runner = CliRunner()
    built = runner.invoke(app, ["build", str(tmp_path / "pipeline.yaml"), "--store", store])
    assert built.exit_code == 0, built.output
    res = runner.invoke(app, ["show", "wide/synth", "--store", store, "--json"])
    assert res.exit_code == 0, res.output
    ledger = json.loads(res.stdout)["report"]["privacy_ledger"]
    names = [m["name"] for m in ledger["mechanisms"]]
    assert len(names) == 23 and names[-1] == "dp_sgd:discriminator"
    shown = runner.invoke(app, ["show", "wide/synth", "--store", store])
    assert shown.exit_code == 0, shown.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", shown.output)
    lines = text.splitlines()
    for name in names:
        assert any(re.search(rf"(^|\W){re.escape(name)}(\W|$)", ln) for ln in lines), name
    assert "23 mechanisms, all shown" in text
    # the DP-SGD row carries most of epsilon; its epsilon alone is on the screen
    (sgd,) = [m for m in ledger["mechanisms"] if m["name"] == "dp_sgd:discriminator"]
    (row,) = [ln for ln in lines if "dp_sgd:discriminator" in ln]
    assert f"{sgd['epsilon_alone']:.4g}" in row
