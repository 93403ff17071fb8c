"""The bounded local engine gives the rows the in-memory engine gives, whatever the batches,
buckets and part sizes; a global step over the limit fails before it starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from unittest.mock import patch

import polars as pl
import pytest
from pydantic import Field

from tamis.config import Config
from tamis.errors import SpecError, StepError
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
from tamis.pipelines.steps.base import (
    ROW,
    BatchResult,
    KeyedStep,
    MapStep,
    Step,
    StepContext,
)


class UpperConfig(Config):
    column: str = Field("text", description="text column")


class Upper(MapStep[UpperConfig]):
    """Upper-case a column and count the rows that changed."""

    name = "test_upper"
    Params = UpperConfig

    def map_batch(
        self, batch: pl.DataFrame, params: UpperConfig, plan: Any, ctx: StepContext
    ) -> BatchResult:
        out = batch.with_columns(pl.col(params.column).str.to_uppercase())
        changed = int((out[params.column] != batch[params.column]).sum())
        return BatchResult(out, {"rows_in": batch.height, "changed": changed})


class KeepFirstConfig(Config):
    column: str = Field("text", description="key column")


class KeepFirst(KeyedStep[KeepFirstConfig]):
    """Keep the first row of every key (lowest source position)."""

    name = "test_keep_first"
    Params = KeepFirstConfig

    def key(self, batch: pl.DataFrame, input_name: str, params: Any, plan: Any) -> pl.Series:
        return batch[params.column]

    def reduce(
        self, frames: dict[str, pl.DataFrame], params: Any, plan: Any, ctx: StepContext
    ) -> BatchResult:
        df = frames["input"]
        first = df.group_by(params.column).agg(pl.col(ROW).min())
        kept = df.filter(pl.col(ROW).is_in(first[ROW].implode()))
        return BatchResult(
            kept,
            {"rows_in": df.height, "duplicates": df.height - kept.height},
            {"clusters": first.filter(pl.lit(True))},
        )

    def finish(self, merged: BatchResult, params: Any, plan: Any, ctx: StepContext) -> dict:
        return {**merged.stats, "keys": merged.tables["clusters"].height}


class Whole(Step[KeepFirstConfig]):
    """A global step."""

    name = "test_whole"
    Params = KeepFirstConfig


def _corpus(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "id": list(range(n)),
            "text": [f"doc {i % 37} " + "x" * (i % 13) for i in range(n)],
        }
    )


def _ctx(tmp_path: Path) -> StepContext:
    return StepContext(step="s", pipeline="p", seed=0, artifacts_dir=tmp_path / "art")


def _read(parts: list, directory: Path) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(directory / p["path"]) for p in parts])


@pytest.mark.parametrize("batch_rows", [1, 7, 1000])
@pytest.mark.parametrize("part_rows", [1, 50, 10**6])
def test_map_streams_to_the_same_parts_as_in_memory(
    tmp_path: Path, batch_rows: int, part_rows: int
) -> None:
    df = _corpus(300)
    step, params, ctx = Upper(), UpperConfig(), _ctx(tmp_path)
    whole = step.run({"input": df.lazy()}, params, ctx)
    expected = write_frame_parts(whole.frames["data"], tmp_path / "mem", max_rows=part_rows)
    engine = BoundedEngine(
        memory_limit=parse_size("64MB"),
        spill_root=tmp_path / "spill",
        batch_rows=batch_rows,
        part_max_rows=part_rows,
    )
    parts, out = engine.run_map(step, {"input": df.lazy()}, params, ctx, tmp_path / "out")
    assert parts_hash(parts) == parts_hash(expected)
    assert out.report == whole.report == {"rows_in": 300, "changed": 300}


@pytest.mark.parametrize("memory", ["1MiB", "2MB", "64MB"])
@pytest.mark.parametrize("batch_rows", [5, 64, 100_000])
def test_keyed_spills_to_buckets_and_gives_the_same_rows(
    tmp_path: Path, memory: str, batch_rows: int
) -> None:
    df = _corpus(2000)
    step, params, ctx = KeepFirst(), KeepFirstConfig(), _ctx(tmp_path)
    whole = step.run({"input": df.lazy()}, params, ctx)
    expected = write_frame_parts(whole.frames["data"], tmp_path / "mem")
    engine = BoundedEngine(
        memory_limit=parse_size(memory), spill_root=tmp_path / "spill", batch_rows=batch_rows
    )
    parts, out = engine.run_keyed(step, {"input": df.lazy()}, params, ctx, tmp_path / "out")
    assert parts_hash(parts) == parts_hash(expected)
    assert out.report == whole.report
    assert _read(parts, tmp_path / "out")["id"].to_list() == whole.frames["data"]["id"].to_list()
    assert not (tmp_path / "spill" / "keyed").exists()  # spill cleaned (inside the store tmp)


def test_keyed_with_more_buckets_than_rows(tmp_path: Path) -> None:
    df = _corpus(40)
    step, params, ctx = KeepFirst(), KeepFirstConfig(), _ctx(tmp_path)
    whole = step.run({"input": df.lazy()}, params, ctx)
    engine = BoundedEngine(memory_limit=parse_size("1MiB"), spill_root=tmp_path / "s", batch_rows=3)
    engine.memory_limit = 100  # ~120 buckets for 40 rows
    parts, out = engine.run_keyed(step, {"input": df.lazy()}, params, ctx, tmp_path / "out")
    assert engine.stats.buckets > df.height
    assert _read(parts, tmp_path / "out").equals(whole.frames["data"])
    assert out.report == whole.report


def test_a_global_step_over_the_limit_fails_before_starting(tmp_path: Path) -> None:
    engine = BoundedEngine(memory_limit=parse_size("100MB"), spill_root=tmp_path)
    with pytest.raises(StepError) as err:
        engine.check_global(Whole(), estimated_bytes=80 * 10**6, rows=1_000_000, ctx=_ctx(tmp_path))
    text = str(err.value)
    assert "step 's'" in text and "240.0 MB" in text and "100.0 MB" in text
    assert "sample" in text and "--memory-limit" in text
    engine.check_global(Whole(), estimated_bytes=10 * 10**6, rows=10, ctx=_ctx(tmp_path))


def test_memory_limit_parsing() -> None:
    assert parse_size("1.5GB") == 1_500_000_000
    assert parse_size("512MiB") == 512 * 2**20
    with pytest.raises(SpecError, match="fix: write a number"):
        parse_size("lots")


def test_keyed_spill_files_follow_the_buckets_not_the_batches(tmp_path: Path) -> None:
    """One growing spill file per bucket and per output range: 2,000 rows in batches of 7 (286
    batches) through a few buckets make a few files, not batches x buckets; with room for only
    2 open writers, a bucket starts a new file when its writer was closed, and the rows are the
    same."""
    df = _corpus(2000)
    step, params = KeepFirst(), KeepFirstConfig()
    whole = step.run({"input": df.lazy()}, params, _ctx(tmp_path))
    expected = parts_hash(write_frame_parts(whole.frames["data"], tmp_path / "mem"))
    engine = BoundedEngine(memory_limit=parse_size("1MiB"), spill_root=tmp_path / "s", batch_rows=7)
    parts, _ = engine.run_keyed(step, {"input": df.lazy()}, params, _ctx(tmp_path), tmp_path / "o")
    assert parts_hash(parts) == expected
    assert 1 < engine.stats.buckets < 286
    # a file per bucket in pass 1, one per (range) in pass 2: at most buckets + ranges (<= 2)
    assert engine.stats.spill_files <= engine.stats.buckets + 2
    with patch("tamis.pipelines.engines.spill_files.MAX_OPEN", 2):
        small = BoundedEngine(parse_size("1MiB"), tmp_path / "s2", batch_rows=7)
        parts2, _ = small.run_keyed(
            step, {"input": df.lazy()}, params, _ctx(tmp_path), tmp_path / "o2"
        )
    assert parts_hash(parts2) == expected
    assert small.stats.spill_files > engine.stats.spill_files


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"columns": ["age", "education", "occupation"], "keep": "last"},
        {"columns": ["education", "occupation"], "action": "flag", "keep": "none"},
        {"columns": ["workclass", "native-country"], "normalize": True, "max_examples": 0},
    ],
)
def test_dedup_selecting_path_equals_the_in_memory_run_and_the_whole_row_path(
    tmp_path: Path, adult_train: pl.DataFrame, raw: dict
) -> None:
    """Dedup declares `key_columns`: the engine spills only those, routes the kept rows' ROW and
    reads each range of the input again. On UCI Adult (in batches of 3,000 rows, many buckets and
    ranges) its parts, report and clusters equal the in-memory run's and those of the whole-row
    path (the same step without `key_columns`)."""
    from tamis.pipelines.registry import get_step_type
    from tamis.pipelines.steps.dedup import Dedup

    class WholeRowDedup(Dedup):
        def key_columns(self, schema: Any, params: Any, plan: Any) -> list[str] | None:
            return None

    df = adult_train.rename({c: c.strip() for c in adult_train.columns})
    for name in ("m", "sel", "row"):
        (tmp_path / name / "art").mkdir(parents=True)
    step = get_step_type("dedup")()
    params = step.Params(**raw)
    whole = step.run({"input": df.lazy()}, params, _ctx(tmp_path / "m"))
    frame = whole.frames["data"]
    frame = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    expected = parts_hash(write_frame_parts(frame, tmp_path / "mem"))
    outs = []
    for name, kind in (("sel", step), ("row", WholeRowDedup())):
        engine = BoundedEngine(
            memory_limit=parse_size("8MB"), spill_root=tmp_path / name, batch_rows=3000
        )
        ctx = _ctx(tmp_path / name)
        parts, out = engine.run_keyed(
            kind, {"input": df.lazy()}, params, ctx, tmp_path / name / "o"
        )
        assert parts_hash(parts) == expected, name
        assert engine.stats.buckets > 1 and engine.stats.rows_in == df.height
        assert out.report == whole.report, name
        outs.append(out)
    for out in outs:
        clusters = out.tables["clusters"]
        clusters = clusters.collect() if isinstance(clusters, pl.LazyFrame) else clusters
        assert clusters.equals(whole.tables["clusters"])
    assert whole.report["duplicates"] > 0
