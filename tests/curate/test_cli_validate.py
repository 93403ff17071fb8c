"""`tamis validate suggest|check`: a starter suite from a file, then a gate with exit code 3."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from tamis.cli import app


def test_suggest_then_check_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "d.csv"
    pl.DataFrame({"age": [20, 30, 40], "sex": ["f", "m", "f"]}).write_csv(data)
    runner = CliRunner()
    res = runner.invoke(
        app, ["validate", "suggest", str(data), "--out", str(tmp_path / "s.json"), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["expectations"] > 5
    res = runner.invoke(
        app, ["validate", "check", str(data), "--suite", str(tmp_path / "s.json"), "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.stdout)["success"]
    changed = tmp_path / "e.csv"
    pl.DataFrame({"age": [20, 99, 40], "sex": ["f", "m", "x"]}).write_csv(changed)
    res = runner.invoke(
        app, ["validate", "check", str(changed), "--suite", str(tmp_path / "s.json")]
    )
    assert res.exit_code == 3
    assert "expect_column_values_to_be_between(age)" in res.output
    assert "expect_column_values_to_be_in_set(sex)" in res.output
