"""Near dedup of text out of core: the stages of `near.py`, streamed and spilled, same result.

    parts, report, clusters, pairs = near_dedup_text_bounded(engine, lazy, config, out=dir)

The input is held only when all of it fits a quarter of the budget (`hold_bytes`: then it is
read once, not twice); else memory holds one batch, one spill bucket or one chunk of candidate
pairs (with the shingle sets of their rows). Spill goes to a directory under the engine's
`spill_root` (the store's tmp dir) and is deleted at the end, also on error. Reading the next
batch, and (when the budget has room for two parts) encoding a full part, run on a thread while
the current batch is worked on.

1. map, per batch of rows (numbered by source position): shingle sets (appended to one file of
   hashes and one of offsets, for verification), set fingerprints (spilled by a hash of the
   fingerprint) and, for the first copy of each set in the batch, the MinHash signature's band
   keys (spilled by a hash of (band, key));
2. keyed by fingerprint: the first row of each shingle set -> edges (first, copy) of Jaccard 1;
3. keyed by (band, key): the rows of a bucket that are first copies pair up (`band_pairs`, the
   in-memory function on the same rows in the same order) -> candidate pairs, spilled by range
   of the left row, so every copy of a pair lands in one file and is counted once;
4. per range: unique candidates, verified in chunks by `exact_jaccard` on the rows' shingle sets
   read back from the spill files;
5. global on the small edge list: `edge_clusters` (union-find), keep = lowest (or highest)
   source position; then the input streams again (or the held batches) and the kept (or
   flagged) rows go to parts.

The per-batch and per-bucket work of each stage is in `near_stages.py`, shared with the Ray
engine (`tamis.pipelines.engines.ray_near`). Every stage computes what `near.text_pairs` computes
on the same rows, so the output, report and tables equal the in-memory ones whatever the
batches and buckets.
"""

from __future__ import annotations

import math
import shutil
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import polars as pl

from tamis.curate.dedup.keys import check_text_column
from tamis.curate.dedup.near import LshCounts, NearDedupConfig, lsh_shape
from tamis.curate.dedup.near_stages import (
    OutputPlan,
    Verified,
    all_edges,
    band_buckets,
    bucket_candidates,
    fingerprint_buckets,
    identical_edges,
    near_report,
    signature_batch,
    sorted_by_copy,
    verify_chunk,
    verify_pairs,
)
from tamis.curate.dedup.spill import (
    BucketSpill,
    Engine,
    ShingleStore,
    return_freed_memory,
)
from tamis.errors import DataError

#: the peak memory of shingling a batch, in multiples of its text bytes: 4.3x measured with the
#: numba kernels (30 before them); 8 leaves room. 100 MB of text at 256MB: 3.7 s, not 4.4 s, the
#: same private memory (313 vs 321 MB)
SHINGLE_WORKING_FACTOR = 8
#: bytes of spill per row and band (band u16, key u64, row i64), and per fingerprint row
_BAND_ENTRY = 18
_FINGERPRINT_ENTRY = 32
#: each part encoded in the background holds ~2.5x its row bytes while the next one fills: one
#: encoding thread per this many parts' bytes of budget (at most one per CPU)
_BACKGROUND_PARTS = 6

T = TypeVar("T")


def read_ahead(items: Iterable[T]) -> Iterator[T]:
    """`items` in order, the next one produced by a background thread while the caller works on
    the current one (a batch read and decoded while the previous one is shingled or written).
    Holds one item more than the caller; an error producing one is raised where it is taken."""
    it = iter(items)
    end = object()
    with ThreadPoolExecutor(1, thread_name_prefix="read-ahead") as pool:
        pending = pool.submit(next, it, end)
        while True:
            item = pending.result()
            if item is end:
                return
            pending = pool.submit(next, it, end)
            yield item  # type: ignore[misc]


@dataclass
class _Pass1:
    """What the map stage leaves behind."""

    rows: int = 0
    nulls: int = 0
    counts: LshCounts = field(default_factory=LshCounts)
    #: the input's batches as read, for the writing stage, when they fit `hold_bytes` (else None)
    held: list[pl.DataFrame] | None = None


def hold_bytes(engine: Engine, source: pl.LazyFrame) -> int:
    """The bytes of input the map stage may keep for the writing stage (which then reads the input
    once, not twice): a quarter of the budget, when the whole input (estimated from its first
    rows) fits it; else 0. The other stages size themselves from the rest of the limit."""
    share = int(getattr(engine, "budget", engine.memory_limit)) // 4
    head = source.head(1000).collect()
    if not head.height:
        return 0
    rows = int(source.select(pl.len()).collect().item())
    estimate = head.estimated_size() / head.height * rows
    return share if estimate <= share / 2 else 0


def _signatures(
    engine: Engine,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
    store: ShingleStore,
    spills: tuple[BucketSpill, BucketSpill],
    hold: int = 0,
) -> _Pass1:
    """Stage 1 (map): stream the input, spill shingle sets, fingerprints and band keys; with
    `hold` bytes, keep the batches read (all columns) while they fit."""
    column = config.column
    assert column is not None
    fp_spill, band_spill = spills
    state = _Pass1(held=[] if hold else None)
    held_bytes = 0
    rows = map_batch_rows(engine, source, column)
    engine.stats.batch_rows = rows
    for batch in read_ahead(engine.batches(source if hold else source.select(column), rows)):
        if state.held is not None:
            held_bytes += int(batch.estimated_size())
            state.held.append(batch)
            if held_bytes > hold:  # does not fit after all: the writing stage reads again
                state.held = None
        texts = batch[column]
        sh, fps, keys = signature_batch(texts, state.rows, config, seed, shape)
        store.append(sh)
        fp_spill.add(fingerprint_buckets(fps, fp_spill.n), fps)
        band_spill.add(band_buckets(keys, band_spill.n), keys)
        state.counts.without_shingles += int((sh.sizes() == 0).sum())
        state.nulls += texts.null_count()
        state.rows += batch.height
    store.close()
    return state


def map_batch_rows(engine: Engine, source: pl.LazyFrame, column: str) -> int:
    """Rows per batch of the map stage: shingling peaks at about `SHINGLE_WORKING_FACTOR` times
    the batch's text bytes; that must fit 1/8 of the limit (the engine's `batch_rows` when set)."""
    fixed = getattr(engine, "batch_rows", None)
    if fixed:
        return int(fixed)
    head = source.select(pl.col(column).cast(pl.String)).head(2000).collect()[column]
    per_row = max(float(head.str.len_bytes().mean() or 0.0), 16.0)  # type: ignore[arg-type]
    fit = engine.memory_limit / 8 / (per_row * SHINGLE_WORKING_FACTOR)
    return int(min(max(fit, 64), 100_000))


def _identical(fp_spill: BucketSpill) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2 (keyed by fingerprint): (first row, copy row) of every later copy of a set."""
    firsts, copies = [], []
    for _, frame in fp_spill.buckets():
        first, copy = identical_edges(frame)
        firsts.append(first)
        copies.append(copy)
    return sorted_by_copy(firsts, copies)


def _candidates(
    band_spill: BucketSpill, copies: np.ndarray, pair_spill: BucketSpill, range_rows: int
) -> int:
    """Stage 3 (keyed by band key): candidate pairs of first copies -> pair spill; oversized."""
    oversized = 0
    for _, frame in band_spill.buckets():
        pairs, over = bucket_candidates(frame, copies)
        oversized += over
        if pairs.size:
            pair_spill.add(
                pairs[:, 0] // range_rows, pl.DataFrame({"l": pairs[:, 0], "r": pairs[:, 1]})
            )
    return oversized


def _verify(
    pair_spill: BucketSpill, store: ShingleStore, threshold: float, budget: float
) -> Verified:
    """Stage 4: unique candidates, exact Jaccard on the stored shingle sets -> verified edges."""
    chunk = verify_chunk(8.0 * max(store.total, 1) / max(store.rows, 1), budget)
    result = Verified()
    for _, frame in pair_spill.buckets():
        result.add(verify_pairs(frame, store.gather, threshold, chunk))
    return result


def _write_output(
    engine: Engine,
    source: pl.LazyFrame,
    plan: OutputPlan,
    out: Path,
    held: list[pl.DataFrame] | None = None,
) -> tuple[list[Any], int, list[pl.DataFrame]]:
    """Stage 5: stream the input again; kept (or flagged) rows to parts; example rows. The next
    batch is read, and full parts encoded (`encoders`), in the background while a batch is
    marked."""
    writer = engine.part_writer(out)
    if hasattr(writer, "background"):
        writer.background = encoders(getattr(engine, "budget", 0), writer.max_bytes)
    offset, rows_out, samples = 0, 0, []
    if held is not None:  # the map stage kept the input: each batch let go once written
        batches: Iterator[pl.DataFrame] = _drain(held)
    else:
        batches = read_ahead(engine.batches(source, engine.pick_batch_rows(source)))
    for batch in batches:
        kept, sample = plan.mark(batch, offset)
        writer.write(kept)
        rows_out += kept.height
        offset += batch.height
        if sample is not None:
            samples.append(sample)
    return writer.close(), rows_out, samples


def encoders(budget: float, part_bytes: float) -> int:
    """Threads that encode parts while the writing stage marks the next rows: one per
    `_BACKGROUND_PARTS` parts' bytes of the budget, at most one per CPU (0: none)."""
    from tamis.curate.dedup.kernels import default_threads

    return int(min(budget // (_BACKGROUND_PARTS * part_bytes), default_threads()))


def _drain(frames: list[pl.DataFrame]) -> Iterator[pl.DataFrame]:
    """The frames in order, each dropped from the list as it is taken."""
    frames.reverse()
    while frames:
        yield frames.pop()


def bucket_count(engine: Engine, source: pl.LazyFrame, bands: int) -> int:
    """Band buckets such that one (band keys of its rows, with working copies) fits 1/4 of the
    limit."""
    rows = int(source.select(pl.len()).collect().item())
    need = rows * max(bands * _BAND_ENTRY, _FINGERPRINT_ENTRY) * 3
    return max(1, math.ceil(need / (engine.memory_limit / 4)))


def check_near_input(source: pl.LazyFrame, config: NearDedupConfig) -> tuple[str, tuple[int, int]]:
    """The text column (checked) and the LSH shape (bands, rows), or a clear DataError."""
    column = config.column
    if column is None:
        raise DataError("text mode needs a text column", field="column", fix="give `column`")
    check_text_column(pl.DataFrame(schema=source.collect_schema()), column)
    try:
        shape = lsh_shape(config.threshold, config.num_perm, config.bands, config.rows)
    except ValueError as exc:
        raise DataError(str(exc), fix="check ngram, threshold, bands and rows") from None
    return column, shape


def check_rows(rows: int, nulls: int, column: str) -> None:
    """No rows, or only nulls in the text column: the errors of the in-memory path."""
    if rows == 0:
        raise DataError("the input has no rows", fix="check the previous step's filters")
    if nulls == rows:
        check_text_column(pl.DataFrame({column: [None]}, schema={column: pl.String}), column)


def near_dedup_text_bounded(
    engine: Engine,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    *,
    out: Path,
    seed: int = 0,
    issue: str = "near_duplicate",
    buckets: int | None = None,
) -> tuple[list[Any], dict[str, Any], pl.DataFrame, pl.DataFrame]:
    """`near_dedup_text` without holding the input: kept rows go to parts in `out`.

    Returns (parts, report, clusters, pairs), equal to the in-memory report and tables.
    `buckets` (default: from the memory limit) spill buckets for fingerprints, band keys and
    candidate pairs.
    """
    column, shape = check_near_input(source, config)
    return_freed_memory()
    n_buckets = buckets or bucket_count(engine, source, shape[0])
    engine.stats.buckets = n_buckets
    spill = engine.spill_root / f"near_dedup-{uuid.uuid4().hex[:12]}"
    flush = engine.memory_limit / 32  # buffered rows of one spill (a flush sorts a copy)
    spill_before = engine.stats.spill_bytes
    try:
        store = ShingleStore(spill / "shingles", engine)
        fp_spill = BucketSpill(engine, spill / "fingerprints", n_buckets, flush)
        band_spill = BucketSpill(engine, spill / "bands", n_buckets, flush)
        engine.progress("near_dedup: shingles and MinHash signatures")
        hold = hold_bytes(engine, source)
        state = _signatures(
            engine, source, config, seed, shape, store, (fp_spill, band_spill), hold
        )
        check_rows(state.rows, state.nulls, column)
        engine.progress("near_dedup: identical shingle sets")
        identical = _identical(fp_spill)
        state.counts.identical = int(identical[1].size)
        engine.progress("near_dedup: LSH band buckets")
        range_rows = max(1, math.ceil(state.rows / n_buckets))
        pair_spill = BucketSpill(engine, spill / "pairs", n_buckets, flush)
        state.counts.oversized = _candidates(band_spill, identical[1], pair_spill, range_rows)
        engine.progress("near_dedup: verifying candidates")
        verified = _verify(pair_spill, store, config.threshold, engine.memory_limit / 8)
        state.counts.candidates, state.counts.histogram = verified.candidates, verified.histogram
        state.counts.verified = sum(x.size for x in verified.left)
        plan = OutputPlan.of(all_edges(identical, verified), config, issue)
        engine.progress("near_dedup: writing the kept rows")
        parts, rows_out, samples = _write_output(engine, source, plan, out, state.held)
        state.held = None
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        engine.stats.spill_bytes = spill_before
    report, clusters, pairs = near_report(
        plan, state.rows, rows_out, samples, config, shape, state.counts, seed
    )
    return parts, report, clusters, pairs


__all__ = [
    "bucket_count",
    "check_near_input",
    "check_rows",
    "map_batch_rows",
    "near_dedup_text_bounded",
]
