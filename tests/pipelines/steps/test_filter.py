"""`filter`: a misspelled column is a clear error, and `query` cannot reach past its input
(no files, databases, settings or extensions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.errors import StepError
from tamis.pipelines.steps.filter import Filter, FilterParams

runner = CliRunner()
FRAME = pl.DataFrame(
    {"age": [10, 20, 30, 40], "education-num": [1, 2, 3, 4], "w": ["a", "b", "c", "d"]}
)


def run(**params: Any) -> pl.DataFrame:
    out = Filter().run({"input": FRAME.lazy()}, FilterParams(**params), None)  # type: ignore[arg-type]
    return out.frames["data"]


def test_where_and_query_match_duckdb() -> None:
    expected = duckdb.sql('SELECT * FROM FRAME WHERE age > 15 AND "education-num" < 4').pl()
    assert run(where='age > 15 AND "education-num" < 4').equals(expected)
    assert run(query='SELECT * FROM input WHERE age > 15 AND "education-num" < 4').equals(expected)
    assert run(query="WITH x AS (SELECT * FROM input) SELECT w FROM x WHERE age = 40")[
        "w"
    ].to_list() == ["d"]


def test_misspelled_column_is_a_clear_error() -> None:
    with pytest.raises(StepError) as err:
        run(where="agee > 15")
    assert err.value.column == "agee" and "did you mean 'age'" in (err.value.fix or "")
    with pytest.raises(StepError, match="agee"):
        run(query="SELECT * FROM input WHERE agee > 15")


ESCAPES = {
    "read_file": "SELECT * FROM read_csv('/etc/passwd')",
    "read_text": "SELECT * FROM read_text('/etc/passwd')",
    "copy_to": "COPY (SELECT 1) TO '{out}'",
    "attach_file": "ATTACH '{db}' AS other",
    "attach_memory": "ATTACH ':memory:' AS other",
    "set": "SET enable_external_access = true",
    "reset": "RESET enable_external_access",
    "install": "INSTALL httpfs",
    "load": "LOAD httpfs",
    "pragma": "PRAGMA database_list",
    "create": "CREATE TABLE t AS SELECT * FROM input",
    "two_statements": "SELECT * FROM input; COPY (SELECT 1) TO '{out}'",
    "glob": "SELECT * FROM glob('/etc/*')",
    "python_scan": "SELECT * FROM FRAME",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_query_escapes_are_refused(name: str, tmp_path: Path) -> None:
    out, db = tmp_path / "out.csv", tmp_path / "other.duckdb"
    query = ESCAPES[name].format(out=out, db=db)
    with pytest.raises(StepError) as err:
        run(query=query)
    assert err.value.field == "params.query" and err.value.fix
    assert not out.exists() and not db.exists()


def test_query_escape_from_cli_exits_1(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x,y\n1,2\n3,4\n")
    target = tmp_path / "written.csv"
    spec = {
        "name": "esc",
        "sources": {"a": {"path": "a.csv"}},
        "steps": {
            "steal": {
                "use": "filter",
                "input": "a",
                "params": {"query": "SELECT * FROM read_csv('/etc/passwd')"},
            },
            "write": {
                "use": "filter",
                "input": "a",
                "params": {"query": f"COPY (SELECT 1) TO '{target}'"},
            },
            "typo": {"use": "filter", "input": "a", "params": {"where": "[xx] > 1"}},
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    for step, needle in [("steal", "outside its input"), ("write", "one SELECT"), ("typo", "xx")]:
        result = runner.invoke(app, ["build", str(path), step, "--store", str(tmp_path / "st")])
        assert result.exit_code == 1, result.output
        assert needle in result.output and "Traceback" not in result.output
    assert not target.exists()


def test_kind_follows_the_params() -> None:
    step = Filter()
    assert step.kind_for(FilterParams(where="age >= 18 AND lower(name) LIKE 'a%'")) == "map"
    assert step.kind_for(FilterParams(query="SELECT * FROM input")) == "global"
    # an aggregate or a window looks past the row: the whole input is needed
    assert step.kind_for(FilterParams(where="age > avg(age)")) == "global"
    assert step.kind_for(FilterParams(where="row_number() OVER () < 3")) == "global"
    assert run(where="age > avg(age)")["age"].to_list() == [30, 40]  # over the whole input
