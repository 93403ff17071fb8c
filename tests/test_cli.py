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
    clean = pl.read_parquet(Path(st) / "versions" / d["a"]["id"] / "data")
    assert d["rows_removed"] == clean.filter(pl.col("age") < 22).height
    assert d["rows_added"] == 0 and d["rows_unchanged"] == d["b"]["rows"]
    assert d["schema"] == {"added": [], "removed": [], "retyped": [], "possibly_renamed": []}
    assert d["schema_changed"] is False
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


def test_steps_markdown_and_kind() -> None:
    from tamis.pipelines.registry import step_types

    res = runner.invoke(app, ["steps", "--markdown"])
    assert res.exit_code == 0, res.output
    text = res.stdout
    for name, step_type in step_types().items():
        assert f"### `{name}` ({step_type.kind})" in text
        for field, info in step_type.Params.model_fields.items():
            row = next(line for line in text.splitlines() if line.startswith(f"| `{field}` |"))
            assert row.count(" | ") >= 3 and info.description
    assert "| `n` | int \\| None | `null` | number of rows to draw |" in text
    one = runner.invoke(app, ["steps", "sample"], env={"COLUMNS": "200"}).stdout
    assert "kind: global" in one and "(global)" in one


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
    # the demo invites editing its pipeline: a second `tamis demo` keeps the user's edit beside
    # (it used to copy the shipped file over it)
    edited = tmp_path / "st" / "demo" / "demo_policy.yaml"
    mine = edited.read_text() + "# my edit\n"
    edited.write_text(mine)
    again = run("demo", "--store", str(tmp_path / "st"), "--json")
    (kept,) = (tmp_path / "st" / "demo").glob("demo_policy.yaml.*.edited")
    assert kept.read_text() == mine and "# my edit" not in edited.read_text()
    assert any(str(kept) in w for w in again["warnings"])
    assert {s["status"] for s in again["build"]["steps"]} == {"cached"}


def clean_error(res: Any, code: int = 1) -> str:
    """An error the CLI handled: the exit code, a message, and no traceback."""
    assert res.exit_code == code, res.output
    assert res.exc_info is None or res.exc_info[0] is SystemExit, res.exc_info
    assert "Traceback" not in res.output
    assert "error:" in res.output
    return str(res.output)


def write_pipeline(where: Path, spec: dict[str, Any], name: str = "p.yaml") -> Path:
    import yaml

    (where / name).write_text(yaml.safe_dump(spec, sort_keys=False))
    return where / name


def test_brackets_in_user_text_are_printed_not_read_as_markup(tmp_path: Path) -> None:
    """A column named like a rich closing tag raised MarkupError (a traceback) in the printer."""
    (tmp_path / "d.csv").write_text("a,b\n1,x\n2,y\n")
    where = '"agee[/x]" > 1'
    spec = {
        "name": "p",
        "sources": {"d": {"path": "d.csv"}},
        "steps": {"f": {"use": "filter", "input": "d", "params": {"where": where}}},
    }
    st = str(tmp_path / "st")  # an absolute store path
    res = runner.invoke(app, ["build", str(write_pipeline(tmp_path, spec)), "--store", st])
    text = clean_error(res)
    assert "agee[/x]" in text and "step 'f'" in text
    # a missing source whose path has brackets
    spec = {"name": "p", "sources": {"d": {"path": "[bold]/[/nope].csv"}}, "steps": {}}
    res = runner.invoke(
        app, ["build", str(write_pipeline(tmp_path, spec, "q.yaml")), "--store", st]
    )
    assert "[bold]/[/nope].csv" in clean_error(res)


def test_store_that_is_a_file_is_a_clear_error(tmp_path: Path, pipeline_dir: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("not a store")
    for args in (
        ["build", str(pipeline_dir / "pipeline.yaml")],
        ["versions"],
        ["show", "p/clean"],
        ["diff", "a", "b"],
    ):
        text = clean_error(runner.invoke(app, [*args, "--store", str(afile)]))
        assert "--store names a file" in text and "fix:" in text
    res = runner.invoke(app, ["versions", "--store", str(afile), "--json"])
    assert res.exit_code == 1 and "--store names a file" in json.loads(res.stdout)["error"]
    assert afile.read_text() == "not a store"  # nothing a user owns is touched
    # a store path below a file: the OS error, named, without a traceback
    text = clean_error(runner.invoke(app, ["versions", "--store", str(afile / "sub")]))
    assert "afile" in text


def test_store_that_is_a_file_in_a_real_process(tmp_path: Path) -> None:
    import subprocess
    import sys

    afile = tmp_path / "afile"
    afile.write_text("x")
    exe = Path(sys.executable).parent / "tamis"
    res = subprocess.run(
        [str(exe), "versions", "--store", str(afile)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "--store names a file" in res.stderr


def test_near_dedup_on_nested_columns(tmp_path: Path) -> None:
    rows = [
        {"id": 1, "s": {"x": 1, "y": "p"}, "tags": ["a", "b"]},
        {"id": 2, "s": {"x": 2, "y": "q"}, "tags": ["c"]},
        {"id": 3, "s": {"x": 1, "y": "p"}, "tags": ["a", "b"]},
        {"id": 4, "s": {"x": 1, "y": None}, "tags": None},
    ]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    st = str(tmp_path / "st")
    spec = {
        "name": "n",
        "sources": {"d": {"path": "d.jsonl"}},
        "steps": {
            "nd": {"use": "near_dedup", "input": "d", "params": {"categorical": ["s", "tags"]}}
        },
    }
    res = run("build", str(write_pipeline(tmp_path, spec)), "--store", st, "--json")
    assert res["steps"][0]["rows"] == {"nd": 3}  # row 3 equals row 1 on both nested columns
    kept = pl.read_parquet(Path(st) / "versions" / res["steps"][0]["versions"]["nd"] / "data")
    assert sorted(kept["id"]) == [1, 2, 4]
    # no columns at all would make every row a duplicate: an error, not 1 row out
    spec["steps"]["nd"]["params"] = {"categorical": [], "numeric": []}
    text = clean_error(
        runner.invoke(app, ["build", str(write_pipeline(tmp_path, spec)), "--store", st])
    )
    assert "no columns to compare" in text


def test_unexpected_exceptions_are_errors_not_tracebacks(
    pipeline_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tamis.pipelines.steps import filter as filter_step

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("[/boom] something broke")

    monkeypatch.setattr(filter_step.Filter, "map_batch", boom)  # a map step: batch by batch
    st = str(tmp_path / "st")
    res = runner.invoke(app, ["build", str(pipeline_dir / "pipeline.yaml"), "--store", st])
    text = clean_error(res)
    assert "unexpected RuntimeError: [/boom] something broke" in text
    assert "TAMIS_DEBUG" in text
    monkeypatch.setenv("TAMIS_DEBUG", "1")
    res = runner.invoke(app, ["build", str(pipeline_dir / "pipeline.yaml"), "--store", st])
    assert isinstance(res.exception, RuntimeError)


def test_show_prints_reports_with_bracketed_names_literally(tmp_path: Path) -> None:
    """Report keys and values (column names) were read as rich markup: `tamis show` crashed."""
    (tmp_path / "d.csv").write_text("[/x],[bold]b\n1,x\n1,x\n2,y\n")
    spec = {
        "name": "br",
        "sources": {"d": {"path": "d.csv"}},
        "steps": {"dd": {"use": "dedup", "input": "d"}},
    }
    st = str(tmp_path / "st")
    run("build", str(write_pipeline(tmp_path, spec)), "--store", st)
    for args in (
        ["show", "br/d"],
        ["show", "br/dd", "--rows", "2"],
        ["lineage", "br/dd"],
        ["versions"],
    ):
        res = runner.invoke(app, [*args, "--store", st])
        assert res.exit_code == 0, res.output
        assert "error" not in res.output
    shown = runner.invoke(app, ["show", "br/d", "--store", st]).output
    assert "[/x]" in shown and "[bold]b" in shown


def test_error_printer_prints_paths_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Polars messages quote plans with absolute paths in brackets: `[/abs/store/...]` was read
    as a closing markup tag (the absolute --store + filter typo traceback)."""
    import typer

    from tamis.cli import cli_errors
    from tamis.errors import StepError

    @cli_errors
    def fails(as_json: bool = False) -> None:
        raise StepError("failed: FROM parquet [/abs/st/versions/x/data.parquet] [bold]", step="f")

    with pytest.raises(typer.Exit) as info:
        fails()
    assert info.value.exit_code == 1
    assert "[/abs/st/versions/x/data.parquet] [bold]" in capsys.readouterr().err


def test_build_hint_names_a_ref_that_resolves(tmp_path: Path) -> None:
    """A pipeline ending in a split: the hint is `tamis show p/parts.a`, which resolves (it said
    `p/parts`, which does not)."""
    pl.DataFrame({"x": list(range(20))}).write_csv(tmp_path / "d.csv")
    (tmp_path / "p.yaml").write_text(
        "name: p\nsources: {d: {path: d.csv}}\nsteps:\n"
        "  parts: {use: split, input: d, params: {fractions: {a: 0.5, b: 0.5}}}\n"
    )
    st = str(tmp_path / "st")
    out = run("build", str(tmp_path / "p.yaml"), "--store", st)
    hint = out.split("try: tamis show ")[1].split()[0]
    assert hint == "p/parts.a"
    assert run("show", hint, "--store", st, "--json")["rows"] == 10
