"""`tamis export` never deletes or silently overwrites, picks the format from the suffix, and
neutralises spreadsheet formulas in CSV/TSV (issue 13, section 1)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.store import Store

runner = CliRunner()

PAYLOADS = ["=1+1", "+41", "-2+3", "@SUM(A1:A2)", "\t=cmd", "\r=cmd", '=HYPERLINK("x")']
SAFE = ["plain", "a=b", "", "x-1", "'quoted"]


def _store(tmp_path: Path) -> tuple[Store, str]:
    store = Store(tmp_path / "store")
    frame = pl.DataFrame(
        {
            "text": PAYLOADS + SAFE,
            "n": list(range(-6, 6)),
            "cat": pl.Series(["=x", "y"] * 6, dtype=pl.Categorical),
            "=col": ["v"] * 12,
        }
    )
    vid = "ab" * 32
    store.write_version(
        version_id=vid, name="t/x", frame=frame, parents=[], step={"name": "x"}, seed=0
    )
    store.set_ref("t/x", vid)
    return store, vid


def cli(*args: str, code: int = 0) -> Any:
    res = runner.invoke(app, list(args))
    assert res.exit_code == code, res.output
    return json.loads(res.stdout) if "--json" in args and code == 0 else res.output


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def test_existing_directory_is_never_deleted(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.txt").write_text("years of work")
    before = _tree(target)
    for extra in ([], ["--overwrite"], ["--format", "hf"], ["--format", "hf", "--overwrite"]):
        out = cli("export", "t/x", "--to", str(target), "--store", str(store.root), *extra, code=1)
        assert "never deletes" in out or "exists" in out
        assert _tree(target) == before


def test_dot_dot_and_store_targets_are_refused(tmp_path: Path, monkeypatch: Any) -> None:
    store, vid = _store(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "keep.txt").write_text("keep")
    monkeypatch.chdir(work)
    before_parent = _tree(tmp_path)
    for extra in ([], ["--overwrite"]):
        cli("export", "t/x", "--to", "..", "--store", str(store.root), *extra, code=1)
    assert _tree(tmp_path) == before_parent
    for target in (
        store.versions_dir,
        store.root,
        store.versions_dir / "new.parquet",
        store.data_path(vid),
        tmp_path,  # a folder holding the store
    ):
        out = cli(
            "export",
            "t/x",
            "--to",
            str(target),
            "--store",
            str(store.root),
            "--overwrite",
            code=1,
        )
        assert "store" in out or "exists" in out
    assert _tree(tmp_path) == before_parent
    assert store.read("t/x").height == 12


def test_a_pipeline_source_is_never_overwritten(pipeline_dir: Path, tmp_path: Path) -> None:
    st = str(tmp_path / "st")
    cli("build", str(pipeline_dir / "pipeline.yaml"), "--store", st, "--json")
    source = pipeline_dir / "fair.csv"
    before = source.read_bytes()
    out = cli("export", "p/small", "--to", str(source), "--overwrite", "--store", st, code=1)
    assert "source" in out
    assert source.read_bytes() == before
    # also through another spelling of the same path
    other = str(pipeline_dir / "." / "sub" / ".." / "fair.csv")
    (pipeline_dir / "sub").mkdir()
    cli("export", "p/small", "--to", other, "--overwrite", "--store", st, code=1)
    assert source.read_bytes() == before


def test_existing_file_needs_overwrite_and_is_replaced_atomically(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    target = tmp_path / "out.parquet"
    target.write_bytes(b"old")
    out = cli("export", "t/x", "--to", str(target), "--store", str(store.root), code=1)
    assert "--overwrite" in out and target.read_bytes() == b"old"
    inode = target.stat().st_ino
    res = cli(
        "export", "t/x", "--to", str(target), "--store", str(store.root), "--overwrite", "--json"
    )
    assert res["overwrote"] is True and res["format"] == "parquet"
    assert target.stat().st_ino != inode  # a new file renamed over the old one
    assert pl.read_parquet(target).equals(store.read("t/x"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet", "store"]  # no temp left


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("o.parquet", "parquet"),
        ("o.csv", "csv"),
        ("o.tsv", "tsv"),
        ("o.jsonl", "jsonl"),
        ("o.json", "json"),
        ("o_hf", "hf"),
    ],
)
def test_format_follows_the_suffix(tmp_path: Path, name: str, fmt: str) -> None:
    store, _ = _store(tmp_path)
    target = tmp_path / name
    res = cli("export", "t/x", "--to", str(target), "--store", str(store.root), "--json")
    assert res["format"] == fmt and res["rows"] == 12
    if fmt == "parquet":
        back = pd.read_parquet(target)
    elif fmt == "csv":
        back = pd.read_csv(target, keep_default_na=False)
    elif fmt == "tsv":
        back = pd.read_csv(target, sep="\t", keep_default_na=False)
    elif fmt == "jsonl":
        back = pd.read_json(target, lines=True)
    elif fmt == "json":
        back = pd.DataFrame(json.loads(target.read_text()))
    else:
        import datasets

        back = datasets.load_from_disk(str(target)).to_pandas()
    assert len(back) == 12 and sorted(back["n"].tolist()) == list(range(-6, 6))


def test_contradicting_or_unknown_suffix_is_an_error(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    for target, extra in (
        ("o.csv", ["--format", "parquet"]),
        ("o.parquet", ["--format", "csv"]),
        ("o.json", ["--format", "hf"]),
        ("o.txt", []),
    ):
        out = cli(
            "export",
            "t/x",
            "--to",
            str(tmp_path / target),
            "--store",
            str(store.root),
            *extra,
            code=1,
        )
        assert "suffix" in out
        assert not (tmp_path / target).exists()


def _formula_cells(frame: pd.DataFrame) -> int:
    """Independent count: text cells (and headers) starting with = + - @ tab CR."""
    starts = ("=", "+", "-", "@", "\t", "\r")
    cells = sum(
        1
        for col in frame.columns
        if frame[col].dtype == object or str(frame[col].dtype) == "category"
        for v in frame[col].astype(str)
        if v.startswith(starts)
    )
    return cells + sum(1 for c in frame.columns if str(c).startswith(starts))


@pytest.mark.parametrize("suffix", [".csv", ".tsv"])
def test_csv_formulas_are_escaped_by_default(tmp_path: Path, suffix: str) -> None:
    store, _ = _store(tmp_path)
    original = store.read("t/x").to_pandas()
    expected = _formula_cells(original)
    assert expected == 7 + 6 + 1  # 7 payloads, 6 '=x' categories, the '=col' header
    sep = "\t" if suffix == ".tsv" else ","
    target = tmp_path / f"safe{suffix}"
    res = cli("export", "t/x", "--to", str(target), "--store", str(store.root), "--json")
    assert res["escaped_cells"] == expected
    back = pd.read_csv(target, sep=sep, keep_default_na=False, dtype=str)
    assert _formula_cells(back.drop(columns="n")) == 0  # numbers stay numbers (-6 is no formula)
    assert back["text"].tolist() == ["'" + p for p in PAYLOADS] + SAFE
    assert "'=col" in back.columns and back["n"].tolist() == [str(i) for i in range(-6, 6)]
    raw = tmp_path / f"raw{suffix}"
    res = cli(
        "export",
        "t/x",
        "--to",
        str(raw),
        "--store",
        str(store.root),
        "--no-escape-formulas",
        "--json",
    )
    assert res["escaped_cells"] == 0 and res["formulas_escaped"] is False
    back = pd.read_csv(raw, sep=sep, keep_default_na=False, dtype=str)
    assert back["text"].tolist() == PAYLOADS + SAFE


def test_human_output_says_how_many_cells_were_escaped(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    out = cli("export", "t/x", "--to", str(tmp_path / "o.csv"), "--store", str(store.root))
    assert "14 cells" in out and "wrote 12 rows" in out
    assert os.path.exists(tmp_path / "o.csv")


def test_a_directory_that_appears_during_an_hf_export_is_left_alone(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from tamis.pipelines import export as export_mod

    store, _ = _store(tmp_path)
    target = tmp_path / "hf_out"
    real = export_mod._write

    def racing(df: pl.DataFrame, path: Path, fmt: str) -> None:
        real(df, path, fmt)
        target.mkdir()  # someone else creates it (empty) meanwhile

    monkeypatch.setattr(export_mod, "_write", racing)
    out = cli("export", "t/x", "--to", str(target), "--store", str(store.root), code=1)
    assert "appeared" in out
    assert target.is_dir() and not any(target.iterdir())  # not replaced by the export
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf_out", "store"]  # no temp left


def test_overwrite_only_replaces_regular_files(tmp_path: Path) -> None:
    store, _ = _store(tmp_path)
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    out = cli("export", "t/x", "--to", str(fifo), "--overwrite", "--store", str(store.root), code=1)
    assert "not a regular file" in out and fifo.exists()
    real = tmp_path / "real.csv"
    real.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    cli("export", "t/x", "--to", str(link), "--overwrite", "--store", str(store.root))
    assert link.is_symlink() and pd.read_csv(link).shape[0] == 12  # the link still names it


def test_hf_export_prints_no_progress_bars(tmp_path: Path, capfd: Any) -> None:
    # QA (helper K): `tamis export --to DIR` printed datasets' tqdm bars
    # ("Saving the dataset (1/1 shards): 100%|...") on stderr
    pytest.importorskip("datasets")
    from tamis.pipelines.export import export_version

    store, _ = _store(tmp_path)
    capfd.readouterr()
    export_version(store, "t/x", tmp_path / "hf_out")
    assert "Saving the dataset" not in capfd.readouterr().err
