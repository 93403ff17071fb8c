"""CLI commands through typer's runner, with --json parsed and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from tamis.cli import app

runner = CliRunner()


def run(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args else result.output


def test_build_versions_show_lineage_diff_export(pipeline_dir: Path, tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    built = run("build", str(pipeline_dir / "pipeline.yaml"), "--store", st, "--json")
    assert [s["status"] for s in built["steps"]] == ["built"] * 5
    again = run("build", str(pipeline_dir / "pipeline.yaml"), "--store", st, "--json")
    assert {s["status"] for s in again["steps"]} == {"cached"}
    forced = run(
        "build", str(pipeline_dir / "pipeline.yaml"), "small", "--force", "--store", st, "--json"
    )
    assert [s["step"] for s in forced["steps"]] == ["clean", "adults", "parts", "small"]
    assert forced["steps"][-1]["status"] == "rebuilt"
    versions = run("versions", "--store", st, "--json")["versions"]
    assert len(versions) == 7 and any("p/small" in v["refs"] for v in versions)
    shown = run("show", "p/small", "--store", st, "--json", "--rows", "3")
    assert shown["rows"] == 500 and len(shown["head"]) == 3
    assert shown["step"]["type"] == "sample"
    prefix = shown["id"][:8]
    assert run("show", prefix, "--store", st, "--json")["id"] == shown["id"]
    lin = run("lineage", "p/boot", "--store", st, "--json")
    assert len(lin["nodes"]) == 6 and len(lin["edges"]) == 5
    d = run("diff", "p/clean", "p/adults", "--store", st, "--json")
    clean = pl.read_parquet(Path(st) / "versions" / d["a"]["id"] / "data.parquet")
    assert d["rows_removed"] == clean.filter(pl.col("age") < 22).height
    assert d["rows_added"] == 0 and d["rows_unchanged"] == d["b"]["rows"]
    assert d["schema"] == {"added": [], "removed": [], "retyped": []}
    for fmt, name in (
        ("csv", "o.csv"),
        ("jsonl", "o.jsonl"),
        ("parquet", "o.parquet"),
        ("hf", "o_hf"),
    ):
        res = run(
            "export",
            "p/small",
            "--to",
            str(tmp_path / name),
            "--format",
            fmt,
            "--store",
            st,
            "--json",
        )
        assert res["rows"] == 500 and Path(res["path"]).exists()
    assert pl.read_csv(tmp_path / "o.csv").height == 500
    import datasets

    assert len(datasets.load_from_disk(str(tmp_path / "o_hf"))) == 500
    human = run("show", "p/small", "--store", st)
    assert "rows_out" in human and "schema" in human


def test_errors_are_clear_with_exit_codes(pipeline_dir: Path, tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    res = runner.invoke(app, ["show", "nothing", "--store", st, "--json"])
    assert res.exit_code == 1 and "error" in json.loads(res.stdout)
    (pipeline_dir / "bad.yaml").write_text(
        "name: p\nsources: {f: {path: fair.csv}}\nsteps: {x: {use: dedupp, input: f}}\n"
    )
    res = runner.invoke(app, ["build", str(pipeline_dir / "bad.yaml"), "--store", st])
    assert res.exit_code == 1
    assert (
        "bad.yaml" in res.output and "step 'x'" in res.output and "valid step types" in res.output
    )
    res = runner.invoke(app, ["export", "x", "--store", st])  # missing --to
    assert res.exit_code == 2


def test_steps_lists_types_with_params() -> None:
    data = run("steps", "--json")
    names = {s["name"] for s in data["steps"]}
    assert {"normalize", "filter", "split", "sample"} <= names
    sample = next(s for s in data["steps"] if s["name"] == "sample")
    assert {p["name"] for p in sample["params"]} >= {"n", "fraction", "with_replacement"}
    assert all(p["doc"] for p in sample["params"])


@pytest.mark.parametrize("as_json", [True])
def test_demo_runs_offline(tmp_path: Path, as_json: bool) -> None:
    data = run("demo", "--store", str(tmp_path / "st"), "--json")
    rows = {v["ref"]: v["rows"] for v in data["versions"]}
    for ref in (
        "demo/clean",
        "demo/dedup",
        "demo/cleaned",
        "demo/synth",
        "demo/audit",
        "demo/prefs",
    ):
        assert rows[ref] > 0, ref
    assert rows["demo/dedup"] < rows["demo/checked"]  # the survey has exact duplicates
    assert rows["demo/cleaned"] < rows["demo/noisy"]  # label issues were dropped
    assert data["next"]
