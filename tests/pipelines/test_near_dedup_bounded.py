"""near_dedup out of core gives the in-memory output, report and tables, whatever the memory limit,
batches and band buckets; its spill is removed, also on error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from tamis.curate.dedup import Action, Keep, NearDedupConfig
from tamis.curate.dedup.near_bounded import near_dedup_text_bounded
from tamis.errors import DataError
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
from tamis.pipelines.steps.base import StepContext
from tamis.pipelines.steps.near_dedup import NearDedup


def _planted(n: int, seed: int = 0) -> pl.DataFrame:
    """Documents of random words with exact copies, edited copies, short, empty and null texts."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(400)] + ["café", "naïve", "ÉCOLE", "日本"])
    texts: list[str | None] = []
    for i in range(n):
        kind = rng.random()
        if texts and kind < 0.12:  # exact copy of an earlier document
            texts.append(texts[int(rng.integers(len(texts)))])
        elif texts and kind < 0.30:  # near copy: a few words replaced or appended
            base = texts[int(rng.integers(len(texts)))] or "x"
            words = base.split()
            for _ in range(int(rng.integers(0, 3))):
                words[int(rng.integers(len(words)))] = str(rng.choice(vocab))
            if rng.random() < 0.3:
                words.append(str(rng.choice(vocab)))
            texts.append(" ".join(words))
        elif kind < 0.33:
            texts.append(None if i % 2 else "")
        elif kind < 0.36:
            texts.append(" ".join(rng.choice(vocab, int(rng.integers(1, 4)))))
        else:
            texts.append(" ".join(rng.choice(vocab, int(rng.integers(20, 120)))))
    return pl.DataFrame({"id": np.arange(n), "text": texts, "score": rng.random(n)})


def _ctx(tmp_path: Path) -> StepContext:
    (tmp_path / "art").mkdir(exist_ok=True)
    return StepContext(step="nd", pipeline="p", seed=7, artifacts_dir=tmp_path / "art")


def _engine(tmp_path: Path, memory: str, batch_rows: int | None) -> BoundedEngine:
    return BoundedEngine(
        memory_limit=parse_size(memory), spill_root=tmp_path / "spill", batch_rows=batch_rows
    )


def _in_memory(
    df: pl.DataFrame, params: NearDedupConfig, tmp_path: Path
) -> tuple[str, dict[str, Any], dict[str, pl.DataFrame]]:
    whole = NearDedup().run({"input": df.lazy()}, params, _ctx(tmp_path))
    data = whole.frames["data"]
    assert isinstance(data, pl.DataFrame)
    return parts_hash(write_frame_parts(data, tmp_path / "mem")), whole.report, whole.tables


def _spill_left(tmp_path: Path) -> list[Path]:
    root = tmp_path / "spill"
    return list(root.glob("near_dedup-*")) if root.exists() else []


@pytest.mark.parametrize("action", ["drop", "flag"])
@pytest.mark.parametrize(
    ("memory", "batch_rows", "buckets"),
    [("64MB", None, None), ("2MB", 37, 3), ("1MiB", 60, 1500), ("8MB", 400, 1)],
)
def test_bounded_equals_in_memory_on_planted_duplicates(
    tmp_path: Path, action: Action, memory: str, batch_rows: int | None, buckets: int | None
) -> None:
    df = _planted(1200)
    params = NearDedupConfig(column="text", action=action, keep="first")
    expected, report, tables = _in_memory(df, params, tmp_path)
    assert report["identical_shingle_sets"] > 50 and report["verified_pairs"] > 50
    engine = _engine(tmp_path, memory, batch_rows)
    parts, got, clusters, pairs = near_dedup_text_bounded(
        engine, df.lazy(), params, out=tmp_path / "out", seed=7, buckets=buckets
    )
    assert parts_hash(parts) == expected
    assert {**got, "html": report["html"]} == report
    assert clusters.equals(tables["clusters"]) and pairs.equals(tables["pairs"])
    assert not _spill_left(tmp_path)


@pytest.mark.parametrize("keep", ["last", "none"])
def test_the_step_runs_out_of_core_through_the_engine(tmp_path: Path, keep: Keep) -> None:
    df = _planted(600, seed=1)
    params = NearDedupConfig(column="text", keep=keep, ngram=3, threshold=0.7, max_examples=3)
    expected, report, tables = _in_memory(df, params, tmp_path)
    engine = _engine(tmp_path, "4MB", 50)
    parts, out = engine.run_step(
        NearDedup(), {"input": df.lazy()}, params, _ctx(tmp_path), tmp_path / "o"
    )
    assert parts_hash(parts) == expected
    assert out.report == report and out.frames == {}
    assert all(out.tables[k].equals(tables[k]) for k in ("clusters", "pairs"))
    assert (tmp_path / "art" / "near_dedup.html").exists()
    assert not _spill_left(tmp_path)


def test_more_buckets_than_rows_and_char_shingles(tmp_path: Path) -> None:
    df = _planted(60, seed=2)
    params = NearDedupConfig(column="text", unit="char", ngram=4, threshold=0.6, action="flag")
    expected, report, tables = _in_memory(df, params, tmp_path)
    engine = _engine(tmp_path, "1MiB", 7)
    parts, got, clusters, pairs = near_dedup_text_bounded(
        engine, df.lazy(), params, out=tmp_path / "out", seed=7, buckets=500
    )
    assert parts_hash(parts) == expected
    assert {**got, "html": report["html"]} == report and clusters.equals(tables["clusters"])


def test_sms_spam_bounded_equals_in_memory(tmp_path: Path, sms: pl.DataFrame) -> None:
    params = NearDedupConfig(column="SMS", action="flag")
    expected, report, tables = _in_memory(sms, params, tmp_path)
    assert report["duplicates"] >= 403
    engine = _engine(tmp_path, "16MB", 700)
    parts, got, clusters, pairs = near_dedup_text_bounded(
        engine, sms.lazy(), params, out=tmp_path / "out", seed=7, buckets=7
    )
    assert parts_hash(parts) == expected
    assert {**got, "html": report["html"]} == report
    assert clusters.equals(tables["clusters"]) and pairs.equals(tables["pairs"])


def test_errors_and_spill_removed_on_error(tmp_path: Path) -> None:
    engine = _engine(tmp_path, "8MB", 10)
    params = NearDedupConfig(column="text")
    with pytest.raises(DataError, match="no rows"):
        near_dedup_text_bounded(engine, _planted(5).head(0).lazy(), params, out=tmp_path / "o")
    nulls = pl.DataFrame({"text": [None, None]}, schema={"text": pl.String})
    with pytest.raises(DataError, match="entirely null"):
        near_dedup_text_bounded(engine, nulls.lazy(), params, out=tmp_path / "o")
    with pytest.raises(DataError, match="not found"):
        near_dedup_text_bounded(
            engine, _planted(5).lazy(), NearDedupConfig(column="body"), out=tmp_path / "o"
        )
    assert not _spill_left(tmp_path)
    assert engine.stats.spill_bytes == 0


def test_tabular_mode_falls_back_to_the_global_path(tmp_path: Path) -> None:
    df = pl.DataFrame({"city": ["Paris", "paris ", "Rome", "Oslo"], "age": [30, 31, 40, 50]})
    params = NearDedupConfig(categorical=["city"], numeric=["age"], tolerance=1)
    whole = NearDedup().run({"input": df.lazy()}, params, _ctx(tmp_path))
    data = whole.frames["data"]
    assert isinstance(data, pl.DataFrame)
    engine = _engine(tmp_path, "8MB", None)
    parts, out = engine.run_step(
        NearDedup(), {"input": df.lazy()}, params, _ctx(tmp_path), tmp_path / "o"
    )
    assert parts_hash(parts) == parts_hash(write_frame_parts(data, tmp_path / "mem"))
    assert out.report == whole.report


def test_spill_removed_when_a_stage_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tamis.curate.dedup.near_bounded as nb

    def boom(*args: Any, **kwargs: Any) -> None:
        assert list((tmp_path / "spill").glob("near_dedup-*/shingles/hashes.u64"))  # spilled
        raise OSError("disk full")

    monkeypatch.setattr(nb, "_verify", boom)
    engine = _engine(tmp_path, "2MB", 50)
    with pytest.raises(OSError, match="disk full"):
        near_dedup_text_bounded(
            engine, _planted(300).lazy(), NearDedupConfig(column="text"), out=tmp_path / "o"
        )
    assert not _spill_left(tmp_path) and engine.stats.spill_bytes == 0


@pytest.mark.parametrize(("hold", "reads"), [(0, 2), (40_000, 2), (10**9, 1)])
@pytest.mark.parametrize("encoders", [0, 1, 3])
def test_held_input_and_parts_encoded_in_the_background_change_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold: int, reads: int, encoders: int
) -> None:
    """The input kept by the map stage (none, too much for `hold` part-way, all of it: then it is
    read once) and parts encoded on 0-3 threads while the next fills give the in-memory parts."""
    import tamis.curate.dedup.near_bounded as nb

    df = _planted(1200, seed=3)
    params = NearDedupConfig(column="text", max_examples=4)
    whole = NearDedup().run({"input": df.lazy()}, params, _ctx(tmp_path))
    data = whole.frames["data"]
    assert isinstance(data, pl.DataFrame)
    expected = parts_hash(write_frame_parts(data, tmp_path / "mem", max_bytes=20_000))
    monkeypatch.setattr(nb, "hold_bytes", lambda engine, source: hold)
    monkeypatch.setattr(nb, "encoders", lambda budget, part_bytes: encoders)
    engine = BoundedEngine(
        memory_limit=parse_size("64MB"),
        spill_root=tmp_path / "spill",
        batch_rows=100,
        part_max_bytes=20_000,
    )
    calls = []
    batches = engine.batches
    monkeypatch.setattr(engine, "batches", lambda *a: calls.append(a) or batches(*a))
    parts, got, clusters, pairs = near_dedup_text_bounded(
        engine, df.lazy(), params, out=tmp_path / "out", seed=7
    )
    assert len(parts) > 5 and parts_hash(parts) == expected
    assert len(calls) == reads
    assert {**got, "html": whole.report["html"]} == whole.report
    assert clusters.equals(whole.tables["clusters"]) and pairs.equals(whole.tables["pairs"])
