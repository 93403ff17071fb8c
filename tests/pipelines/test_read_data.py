"""`read_data`: one reader for DATA arguments (a store ref, a version id or a file), reading a file
exactly as a pipeline source of the same file reads."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
import yaml

from tamis.errors import StoreError, TamisError
from tamis.pipelines.data import looks_like_file, read_data
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store


def test_messy_adult_file_reads_as_in_a_pipeline(shared_datasets: Path, store: Store) -> None:
    path = shared_datasets / "adult" / "adult.data"
    data = read_data(str(path), store)
    df = data.frame
    assert data.path == path.resolve() and not data.from_store
    assert df.height == 32_561  # the trailing blank line is no row
    assert df.schema["age"] == pl.Int64  # ' 39' read as a number
    assert df["workclass"][0] == "State-gov"  # the space after the comma is gone
    assert "education-num" in df.columns  # header names lose their padding too
    assert data.reader  # what the sniffer inferred comes along
    # the same rows as the pipeline source of the same file, built into the store
    tmp = store.root.parent / "src"
    tmp.mkdir()
    shutil.copy(path, tmp / "adult.data")
    spec = {"name": "a", "sources": {"adult": {"path": "adult.data"}}, "steps": {}}
    (tmp / "p.yaml").write_text(yaml.safe_dump(spec))
    build(tmp / "p.yaml", store)
    from_store = read_data("a/adult", store)
    assert from_store.from_store and from_store.ref == "a/adult"
    assert from_store.version is not None and from_store.manifest is not None
    assert from_store.manifest["id"] == from_store.version
    assert from_store.frame.equals(df)
    # a version id and an id prefix read the same rows; a store directory works as well as a Store
    assert read_data(from_store.version, store.root).frame.equals(df)
    assert read_data(from_store.version[:12], store).frame.equals(df)
    assert data.sha256() and from_store.sha256() is None


def test_files_of_each_format_and_folders(tmp_path: Path, store: Store) -> None:
    df = pl.DataFrame({"id": [1, 2, 3], "text": ["a", "b, c", None]})
    df.write_parquet(tmp_path / "x.parquet")
    df.write_csv(tmp_path / "x.csv")
    df.write_ndjson(tmp_path / "x.jsonl")
    (tmp_path / "parts").mkdir()
    df.write_parquet(tmp_path / "parts" / "0.parquet")
    for name in ("x.parquet", "x.csv", "x.jsonl", "parts"):
        got = read_data(tmp_path / name, store, what="real").frame
        assert got.equals(df), name


def test_missing_and_unknown_files_are_clear_errors(tmp_path: Path, store: Store) -> None:
    with pytest.raises(TamisError, match="holdout file does not exist") as exc:
        read_data(str(tmp_path / "nope.csv"), store, what="holdout")
    assert exc.value.fix and "store ref" in exc.value.fix
    # no store directory is created to look a missing file up
    with pytest.raises(TamisError, match="data file does not exist"):
        read_data("nope.parquet", tmp_path / "no-store")
    assert not (tmp_path / "no-store").exists()
    (tmp_path / "x.xlsx").write_text("not a table")
    with pytest.raises(TamisError, match="cannot tell the format of the data file") as exc:
        read_data(str(tmp_path / "x.xlsx"), store)
    assert exc.value.fix and ".parquet" in exc.value.fix
    with pytest.raises(StoreError):
        read_data("p/none", store)


def test_looks_like_file() -> None:
    assert looks_like_file("a.csv") and looks_like_file("a.csv.gz") and looks_like_file("x.data")
    assert not looks_like_file("demo/clean") and not looks_like_file("a.gz")


def test_hugging_face_folders(tmp_path: Path, store: Store) -> None:
    datasets = pytest.importorskip("datasets")
    df = pl.DataFrame({"id": [1, 2, 3], "text": ["a", "b", "c"]})
    ds = datasets.Dataset.from_polars(df)
    ds.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": ds}).save_to_disk(str(tmp_path / "dict1"))
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dict2"))
    assert read_data(tmp_path / "one", store).frame.equals(df)
    assert read_data(tmp_path / "dict1", store).frame.equals(df)  # its only split
    with pytest.raises(TamisError, match="splits") as exc:
        read_data(tmp_path / "dict2", store)
    assert exc.value.fix and "dict2/train" in exc.value.fix
