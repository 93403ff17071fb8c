"""Reading sources as the field's tools do (DuckDB's sniffer, pandas), source settings, suffixes,
malformed files, `--sources-under`, and the YAML loader's guards (duplicate keys, alias bombs)."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.errors import SpecError
from tamis.pipelines.runner import build
from tamis.pipelines.sources import read_source_report, source_paths
from tamis.pipelines.spec import SourceSpec, infer_format, load_pipeline
from tamis.pipelines.steps.normalize import Normalize, NormalizeParams
from tamis.pipelines.store import Store
from tamis.safe_yaml import MAX_YAML_NODES

DATA = Path(__file__).parent / "data"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "pipelines.md"
runner = CliRunner()
INT_COLUMNS = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


def _write_pipeline(
    folder: Path, sources: dict[str, Any], steps: dict[str, Any] | None = None
) -> Path:
    spec = {"name": "src", "sources": sources, "steps": steps or {}}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# --------------------------------------------------------------------------- adult, like pandas/DuckDB


@pytest.mark.parametrize("name, rows", [("adult.data", 32561), ("adult.test", 16281)])
def test_adult_reads_like_pandas_and_duckdb(shared_datasets: Path, name: str, rows: int) -> None:
    path = shared_datasets / "adult" / name
    read = read_source_report(path, "csv", {}, name="adult", file="p.yaml")
    frame = read.frame
    expected = pd.read_csv(path, skipinitialspace=True)
    duck = duckdb.read_csv(str(path)).pl()
    # row counts: the blank/unterminated last line is not a row
    assert frame.height == len(expected) == duck.height == rows
    # dtypes: the integer columns are integers, as both readers say
    for col in INT_COLUMNS:
        assert frame.schema[col] == pl.Int64 == duck.schema[col]
        assert str(expected[col].dtype) == "int64"
    assert frame.columns == list(expected.columns) == duck.columns
    # values: every cell equals pandas' with skipinitialspace=True (" Private" -> "Private")
    assert frame.equals(pl.from_pandas(expected))
    # the report says what was inferred
    info = read.info
    assert info["delimiter"] == "," and info["header"] is True and info["header_from"] == "sniffed"
    assert info["rows"] == rows and info["skip_initial_space"] is True
    assert info["types"]["fnlwgt"] == "BIGINT" and info["types"]["workclass"] == "VARCHAR"
    blank = sum(1 for line in path.read_text().splitlines() if not line.strip())
    assert info["blank_lines_skipped"] == blank == (1 if name == "adult.data" else 0)
    assert read.warnings == []


def test_adult_missing_marker_becomes_null(shared_datasets: Path) -> None:
    path = shared_datasets / "adult" / "adult.data"
    frame = read_source_report(path, "csv", {}, name="adult", file="p.yaml").frame
    expected = pd.read_csv(path, skipinitialspace=True, na_values=["?"])
    for strip in (True, False):
        params = NormalizeParams(null_values=["?"], strip_whitespace=strip)
        out = Normalize().run({"input": frame.lazy()}, params, None).frames["data"]  # type: ignore[arg-type]
        nulls = {c: n for c, n in zip(out.columns, out.null_count().row(0), strict=True) if n}
        assert nulls == {c: int(n) for c, n in expected.isna().sum().items() if n}
        assert sum(nulls.values()) == 4262


def test_adult_pipeline_report(shared_datasets: Path, tmp_path: Path) -> None:
    src = tmp_path / "adult.data"
    shutil.copy(shared_datasets / "adult" / "adult.data", src)
    result = build(
        _write_pipeline(tmp_path, {"adult": {"path": "adult.data"}}), Store(tmp_path / "st")
    )
    manifest = result.versions["adult"]
    assert manifest["rows"] == 32561
    reader = manifest["report"]["reader"]
    assert reader["reader"] == "duckdb.read_csv" and reader["blank_lines_skipped"] == 1
    assert {c["name"]: c["dtype"] for c in manifest["schema"]}["fnlwgt"].startswith("Int64")


def test_sms_tsv_quoting_disabled(shared_datasets: Path) -> None:
    path = shared_datasets / "sms_spam" / "SMSSpamCollection.tsv"
    expected = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE)
    for options in ({}, {"quote_char": None}):
        read = read_source_report(path, "tsv", options, name="sms", file="p.yaml")
        assert read.frame.height == len(expected) == 5574
        assert read.frame.equals(pl.from_pandas(expected))
        assert read.info["quote"] == "(none)" and read.info["skip_initial_space"] is False


# --------------------------------------------------------------------------- header / columns


def test_headerless_numbers_are_not_a_header(tmp_path: Path) -> None:
    path = tmp_path / "nums.csv"
    path.write_text("1,2,3\n4,5,6\n7,8,9\n")
    read = read_source_report(path, "csv", {}, name="n", file="p.yaml")
    assert read.frame.height == 3 and read.info["header"] is False
    assert read.frame.row(0) == (1, 2, 3)
    assert len(read.warnings) == 1 and "no header row" in read.warnings[0]
    named = read_source_report(
        path, "csv", {}, name="n", file="p.yaml", settings={"columns": ["a", "b", "c"]}
    )
    assert named.frame.columns == ["a", "b", "c"] and named.frame.height == 3
    assert named.frame.row(0) == (1, 2, 3) and named.warnings == []
    assert named.info["types"] == {"a": "BIGINT", "b": "BIGINT", "c": "BIGINT"}


def test_header_same_shape_as_rows_warns(tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("Alice,Paris\nBob,Lyon\nCarol,Nice\n")
    read = read_source_report(path, "csv", {}, name="n", file="p.yaml")
    # DuckDB's sniffer cannot tell: it takes the first line as the header; we say so
    assert read.info["header"] is True and read.frame.height == 2
    assert len(read.warnings) == 1 and "same shape as the rows below" in read.warnings[0]
    fixed = read_source_report(
        path, "csv", {}, name="n", file="p.yaml", settings={"columns": ["name", "city"]}
    )
    assert fixed.frame.height == 3 and fixed.frame["name"].to_list() == ["Alice", "Bob", "Carol"]
    given = read_source_report(path, "csv", {}, name="n", file="p.yaml", settings={"header": True})
    assert given.warnings == []


def test_header_cell_that_is_a_number_warns(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("country,2019,2020\nFrance,high,low\nItaly,low,low\n")
    read = read_source_report(path, "csv", {}, name="w", file="p.yaml")
    assert read.info["header"] is True
    assert len(read.warnings) == 1 and "'2019'" in read.warnings[0]
    real = tmp_path / "real.csv"
    real.write_text("name,city\nAlice,paris\nBob,lyon\n")
    assert read_source_report(real, "csv", {}, name="r", file="p.yaml").warnings == []


def test_columns_count_must_match(tmp_path: Path) -> None:
    path = tmp_path / "nums.csv"
    path.write_text("1,2,3\n4,5,6\n")
    with pytest.raises(SpecError, match="names 2 columns, but nums.csv has 3"):
        read_source_report(
            path, "csv", {}, name="n", file="p.yaml", settings={"columns": ["a", "b"]}
        )


def test_build_warns_in_report_and_on_stderr(tmp_path: Path) -> None:
    (tmp_path / "nums.csv").write_text("1,2\n3,4\n5,6\n")
    pipeline = _write_pipeline(tmp_path, {"nums": {"path": "nums.csv"}})
    st = str(tmp_path / "st")
    for _ in range(2):  # built, then cached: the warning stays until the spec is fixed
        result = runner.invoke(app, ["build", str(pipeline), "--store", st, "--json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert (
            len(report["warnings"]) == 1 and "source 'nums': no header row" in report["warnings"][0]
        )
        assert "warning: source 'nums': no header row" in result.stderr
    fixed = _write_pipeline(tmp_path, {"nums": {"path": "nums.csv", "columns": ["x", "y"]}})
    result = runner.invoke(app, ["build", str(fixed), "--store", st, "--json"])
    assert result.exit_code == 0 and "warnings" not in json.loads(result.stdout)
    assert Store(st).read("src/nums").columns == ["x", "y"]


def test_source_options_documented() -> None:
    docs = DOCS.read_text()
    for name, info in SourceSpec.model_fields.items():
        assert info.description, name
        assert f"`{name}`" in docs, f"source option {name} missing from docs/pipelines.md"


# --------------------------------------------------------------------------- formats by suffix


def _gz(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data))
    return path


@pytest.mark.parametrize(
    "name, fmt",
    [
        ("d.csv.gz", "csv"),
        ("d.tsv.gz", "tsv"),
        ("d.jsonl.gz", "jsonl"),
        ("d.ndjson.gz", "jsonl"),
        ("parts", "parquet"),
        ("d.parquet", "parquet"),
    ],
)
def test_format_from_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    frame = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    path = tmp_path / name
    if name.endswith(".csv.gz"):
        _gz(path, frame.write_csv().encode())
    elif name.endswith(".tsv.gz"):
        _gz(path, frame.write_csv(separator="\t").encode())
    elif name.endswith((".jsonl.gz", ".ndjson.gz")):
        _gz(path, frame.write_ndjson().encode())
    elif name == "parts":  # a partitioned output folder, with Spark's marker file
        path.mkdir()
        frame.head(2).write_parquet(path / "part-0.parquet")
        frame.tail(1).write_parquet(path / "part-1.parquet")
        (path / "_SUCCESS").write_text("")
    else:
        frame.write_parquet(path)
    assert infer_format(path) == fmt
    result = build(_write_pipeline(tmp_path, {"d": {"path": name}}), Store(tmp_path / "st"))
    assert result.versions["d"]["step"]["params"]["format"] == fmt
    assert Store(tmp_path / "st").read("src/d").sort("a").equals(frame)


def test_unknown_compressed_suffix_is_not_guessed(tmp_path: Path) -> None:
    assert infer_format(tmp_path / "x.parquet.gz") is None
    assert infer_format(tmp_path / "x.gz") is None


# --------------------------------------------------------------------------- malformed Parquet


def test_parquet_with_lying_metadata_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "lying.parquet"
    shutil.copy(DATA / "lying_row_count.parquet", path)
    with pytest.raises(SpecError) as err:
        read_source_report(path, "parquet", {}, name="bad", file="p.yaml")
    assert str(path) in str(err.value) and err.value.field == "sources.bad"
    pipeline = _write_pipeline(tmp_path, {"bad": {"path": "lying.parquet"}})
    result = runner.invoke(app, ["build", str(pipeline), "--store", str(tmp_path / "st")])
    assert result.exit_code == 1 and "lying.parquet" in result.output
    assert "Traceback" not in result.output


# --------------------------------------------------------------------------- source paths


def test_build_prints_source_paths_and_sources_under(tmp_path: Path) -> None:
    inside, outside = tmp_path / "job", tmp_path / "elsewhere"
    inside.mkdir()
    outside.mkdir()
    (inside / "a.csv").write_text("x,y\n1,2\n")
    (outside / "b.csv").write_text("x,y\n3,4\n")
    pipeline = _write_pipeline(
        inside, {"a": {"path": "a.csv"}, "b": {"path": "../elsewhere/b.csv"}}
    )
    st = str(tmp_path / "st")
    ok = runner.invoke(app, ["build", str(pipeline), "--store", st])
    assert ok.exit_code == 0, ok.output
    assert f"source a: {(inside / 'a.csv').resolve()}" in ok.stderr
    assert f"source b: {(outside / 'b.csv').resolve()}" in ok.stderr
    refused = runner.invoke(
        app,
        ["build", str(pipeline), "--store", str(tmp_path / "st2"), "--sources-under", str(inside)],
    )
    assert (
        refused.exit_code == 1
        and "outside" in refused.output
        and "sources.b.path" in refused.output
    )
    assert not (tmp_path / "st2" / "versions").exists() or not any(
        (tmp_path / "st2" / "versions").iterdir()
    )
    # a symlink inside the folder that points outside is refused too
    (inside / "link.csv").symlink_to(outside / "b.csv")
    spec = load_pipeline(_write_pipeline(inside, {"l": {"path": "link.csv"}}))
    with pytest.raises(SpecError, match="outside"):
        source_paths(spec, under=inside)
    spec = load_pipeline(_write_pipeline(inside, {"a": {"path": "a.csv"}}))
    assert source_paths(spec, under=inside) == {"a": (inside / "a.csv").resolve()}


# --------------------------------------------------------------------------- YAML guards


def test_duplicate_step_names_are_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    path = tmp_path / "dup.yaml"
    path.write_text(
        "name: dup\n"
        "sources:\n"
        "  a: {path: a.csv}\n"
        "steps:\n"
        "  clean: {use: normalize, input: a}\n"
        "  other: {use: normalize, input: a}\n"
        "  clean: {use: filter, input: a, params: {where: 'x > 0'}}\n"
    )
    with pytest.raises(SpecError, match=r"step 'clean' is defined twice: line 5 and line 7"):
        load_pipeline(path)
    result = runner.invoke(app, ["build", str(path), "--store", str(tmp_path / "st")])
    assert result.exit_code == 1 and "defined twice" in result.output
    nested = tmp_path / "nested.yaml"
    nested.write_text("name: n\nsteps:\n  s: {use: sample, params: {n: 1, n: 2}}\n")
    with pytest.raises(
        SpecError, match=r"duplicate key 'n' at steps.s.params.n: line 3 and line 3"
    ):
        load_pipeline(nested)


def test_yaml_alias_bomb_is_refused(tmp_path: Path) -> None:
    levels = ["a: &a [" + ",".join(['"lol"'] * 9) + "]"]
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        levels.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    bomb = "\n".join(levels) + "\nname: bomb\n"
    assert len(bomb.encode()) < 500  # expands to 9**9 = 387 million strings
    path = tmp_path / "bomb.yaml"
    path.write_text(bomb)
    with pytest.raises(SpecError, match=f"more than {MAX_YAML_NODES:,} nodes"):
        load_pipeline(path)
    result = runner.invoke(app, ["build", str(path), "--store", str(tmp_path / "st")])
    assert result.exit_code == 1 and "alias bomb" in result.output
    recursive = tmp_path / "rec.yaml"
    recursive.write_text("name: r\nx: &x [*x]\n")
    with pytest.raises(SpecError, match="recursive alias"):
        load_pipeline(recursive)
    # ordinary anchors and merges still load
    fine = tmp_path / "fine.yaml"
    (tmp_path / "a.csv").write_text("x\n1\n")
    fine.write_text(
        "name: f\nsources:\n  a: {path: a.csv}\nsteps:\n"
        "  one: &n {use: normalize, input: a, params: {strip_whitespace: true}}\n"
        "  two: {<<: *n, input: one}\n"
    )
    spec = load_pipeline(fine)
    assert spec.steps["two"].named_inputs() == {"input": "one"}


def test_value_past_the_sniffer_sample_reads_like_pandas(tmp_path: Path) -> None:
    path = tmp_path / "late.csv"
    path.write_text("a,b\n" + "".join(f"{i},{i}\n" for i in range(60_000)) + "oops,1\n")
    read = read_source_report(path, "csv", {}, name="late", file="p.yaml")
    expected = pd.read_csv(path)
    assert read.frame.height == len(expected) == 60_001
    assert read.frame.schema["a"] == pl.String and str(expected["a"].dtype) == "object"
    assert read.frame.schema["b"] == pl.Int64 and str(expected["b"].dtype) == "int64"
    assert read.frame["a"][-1] == "oops" and "every row" in read.info["type_sample"]


def test_settings_and_legacy_options(tmp_path: Path) -> None:
    path = tmp_path / "semi.txt"
    path.write_text("id; name\n1; 'a;b'\n2; 'c'\n")
    read = read_source_report(
        path, "csv", {}, name="s", file="p.yaml", settings={"delimiter": ";", "quote": "'"}
    )
    assert read.frame.columns == ["id", "name"] and read.frame["name"].to_list() == ["a;b", "c"]
    with pytest.raises(SpecError, match="could not read .*semi.txt as CSV") as err:
        # without quoting, 'a;b' is two fields: a clear error, not DuckDB's page of advice
        read_source_report(
            path, "csv", {}, name="s", file="p.yaml", settings={"delimiter": ";", "quote": ""}
        )
    assert "Possible fixes" not in str(err.value)
    plain = tmp_path / "plain.csv"
    plain.write_text("id; name\n1; a\n2; c\n")
    kept = read_source_report(
        plain, "csv", {}, name="s", file="p.yaml", settings={"skip_initial_space": False}
    )
    assert kept.frame["name"].to_list() == [" a", " c"] and kept.info["delimiter"] == ";"
    renamed = read_source_report(
        path,
        "csv",
        {},
        name="s",
        file="p.yaml",
        settings={"delimiter": ";", "quote": "'", "header": True, "columns": ["k", "v"]},
    )
    assert renamed.frame.columns == ["k", "v"] and renamed.frame.height == 2
    # the Polars option names of reader 1 still work (translated, and the report says so)
    legacy = read_source_report(
        path, "csv", {"separator": ";", "quote_char": "'", "has_header": True}, name="s", file="p"
    )
    assert legacy.frame.equals(read.frame) and len(legacy.info["notes"]) == 3
    with pytest.raises(SpecError, match="sources.s") as err:
        read_source_report(path, "csv", {"no_such_option": 1}, name="s", file="p.yaml")
    assert "no_such_option" in str(err.value)
    # option names are SQL parameter names: nothing else gets into the reader's SQL
    marker = tmp_path / "injected.csv"
    hostile = {f"header := true); COPY (SELECT 1) TO '{marker}'; --": 1}
    with pytest.raises(SpecError, match="not a DuckDB read_csv parameter name"):
        read_source_report(path, "csv", hostile, name="s", file="p.yaml")
    assert not marker.exists()
    pq = tmp_path / "x.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(pq)
    with pytest.raises(SpecError, match="apply to CSV/TSV sources"):
        read_source_report(pq, "parquet", {}, name="x", file="p.yaml", settings={"header": True})


def test_lines_the_sniffer_skips_are_reported_and_empty_files_refused(tmp_path: Path) -> None:
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("Export of 2024\nnote: internal\nid,v\n1,2\n3,4\n")
    read = read_source_report(ragged, "csv", {}, name="r", file="p.yaml")
    assert read.frame.rows() == [(1, 2), (3, 4)] and read.info["lines_skipped_at_top"] == 2
    assert any("first 2 line(s)" in w for w in read.warnings)
    accepted = read_source_report(ragged, "csv", {"skip": 2}, name="r", file="p.yaml")
    assert accepted.frame.equals(read.frame) and accepted.warnings == []
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(SpecError, match="empty.csv is empty"):
        read_source_report(empty, "csv", {}, name="e", file="p.yaml")


def test_columns_setting_is_validated() -> None:
    from tamis.pipelines.spec import parse_pipeline

    for cols, msg in [(["a", "a"], "given twice"), (["a", " "], "non-empty"), ([], "non-empty")]:
        with pytest.raises(SpecError, match=msg) as err:
            parse_pipeline({"name": "x", "sources": {"s": {"path": "a.csv", "columns": cols}}})
        assert err.value.field == "sources.s.columns"
    with pytest.raises(SpecError) as err:
        parse_pipeline({"name": "x", "sources": {"s": {"path": "a.csv", "hedaer": True}}})
    assert "header" in (err.value.fix or "") and "columns" in (err.value.fix or "")


def test_source_past_the_memory_budget_is_refused_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = _gz(tmp_path / "bomb.csv.gz", b"a,b\n" + b"0,0\n" * 1_500_000)  # 6 MB in ~6 KB
    assert bomb.stat().st_size < 100_000
    monkeypatch.setenv("TAMIS_MEMORY_BUDGET", "2M")
    with pytest.raises(SpecError, match="larger than the memory budget once decompressed") as err:
        read_source_report(bomb, "csv", {}, name="bomb", file="p.yaml")
    assert "TAMIS_MEMORY_BUDGET" in (err.value.fix or "")
    parquet = tmp_path / "big.parquet"
    pl.DataFrame({"a": range(400_000)}).write_parquet(parquet)  # 3.2 MB of int64 when read
    with pytest.raises(SpecError, match="memory budget once read"):
        read_source_report(parquet, "parquet", {}, name="big", file="p.yaml")
    monkeypatch.setenv("TAMIS_MEMORY_BUDGET", "16M")
    assert read_source_report(bomb, "csv", {}, name="bomb", file="p.yaml").frame.height == 1_500_000
    monkeypatch.setenv("TAMIS_MEMORY_BUDGET", "lots")
    with pytest.raises(SpecError, match="not a size"):
        read_source_report(bomb, "csv", {}, name="bomb", file="p.yaml")


def test_day_month_order_that_the_sniffer_guessed_is_reported_and_warned(tmp_path: Path) -> None:
    # QA (helper K): DuckDB reads 05/01/2024 as 5 January (pandas: 1 May) when no day is above
    # 12, silently; the report did not even say which format it chose
    path = tmp_path / "d.csv"
    path.write_text("name,day\nalice,05/01/2024\nbob,10/02/2024\n")
    read = read_source_report(path, "csv", {}, name="d", file="p.yaml")
    assert read.info["dateformat"] == "%d/%m/%Y"
    assert len(read.warnings) == 1 and "'%m/%d/%Y' fits too" in read.warnings[0]
    # the fix the warning gives works, in both directions, and silences it
    us = read_source_report(path, "csv", {"dateformat": "%m/%d/%Y"}, name="d", file="p.yaml")
    assert us.warnings == [] and str(us.frame["day"][0]) == "2024-05-01"
    eu = read_source_report(path, "csv", {"dateformat": "%d/%m/%Y"}, name="d", file="p.yaml")
    assert eu.warnings == [] and str(eu.frame["day"][0]) == "2024-01-05"
    # a day above 12 settles it; year-first (ISO) dates are not ambiguous
    path.write_text("name,day\nalice,05/01/2024\nbob,13/02/2024\n")
    assert read_source_report(path, "csv", {}, name="d", file="p.yaml").warnings == []
    path.write_text("name,day\nalice,2024-01-05\n")
    iso = read_source_report(path, "csv", {}, name="d", file="p.yaml")
    assert iso.warnings == [] and iso.info["dateformat"] == "%Y-%m-%d"


# --------------------------------------------------------------------------- streamed imports


def test_parquet_glob_directory_and_gzip_jsonl_stream_into_the_rows_a_whole_read_gives(
    tmp_path: Path,
) -> None:
    from tamis.pipelines.engines.local import BoundedEngine

    frame = pl.DataFrame({"id": range(5000), "text": [f"doc {i % 97}" for i in range(5000)]})
    (tmp_path / "parts").mkdir()
    for i in range(3):  # a directory of parts, also read by a glob
        frame.slice(i * 2000, 2000).write_parquet(tmp_path / "parts" / f"p{i}.parquet")
    with gzip.open(tmp_path / "docs.jsonl.gz", "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in frame.iter_rows(named=True))
    sources = {
        "folder": {"path": "parts"},
        "glob": {"path": "parts/p*.parquet"},
        "lines": {"path": "docs.jsonl.gz"},
    }
    pipeline = _write_pipeline(tmp_path, sources)
    store = Store(tmp_path / "st")
    engine = BoundedEngine(64 * 10**6, store.tmp_dir, batch_rows=333)
    result = build(pipeline, store, engine=engine)
    for name in sources:
        assert store.read(result.versions[name]["id"]).equals(frame), name
        assert result.versions[name]["report"]["reader"]["rows"] == 5000
    whole = read_source_report(tmp_path / "docs.jsonl.gz", "jsonl", {}, name="l", file="p.yaml")
    assert whole.frame.equals(frame)
    # the glob matches the folder's files: the same content, the same version (read once)
    assert result.versions["glob"]["id"] == result.versions["folder"]["id"]
    assert engine.stats.rows_in == 10_000 and engine.stats.parts_written == 2
    none = _write_pipeline(tmp_path, {"g": {"path": "parts/q*.parquet"}})
    with pytest.raises(SpecError, match="source not found"):
        build(none, store)
    csv_glob = _write_pipeline(tmp_path, {"g": {"path": "parts/*.csv", "format": "csv"}})
    (tmp_path / "parts" / "a.csv").write_text("a\n1\n")
    with pytest.raises(SpecError, match="a glob .* reads Parquet files, not csv"):
        build(csv_glob, store)
