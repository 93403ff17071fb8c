"""Near dedup of text out of core: the stages of `near.py`, streamed and spilled, same result.

    parts, report, clusters, pairs = near_dedup_text_bounded(engine, lazy, config, out=dir)

The input is never held; memory holds one batch, one spill bucket or one chunk of candidate
pairs (with the shingle sets of their rows). Spill goes to a directory under the engine's
`spill_root` (the store's tmp dir) and is deleted at the end, also on error.

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
   source position; then the input streams again and the kept (or flagged) rows go to parts.

Every stage computes what `near.text_pairs` computes on the same rows, so the output, report and
tables equal the in-memory ones whatever the batches and buckets.
"""

from __future__ import annotations

import math
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import (
    ROW,
    RowMarks,
    best_similarity,
    cluster_summary,
    edge_clusters,
    examples_of,
    flag_scores,
    mark_with,
    removed_count,
    top_clusters,
)
from tamis.curate.dedup.hashing import splitmix64
from tamis.curate.dedup.keys import check_text_column
from tamis.curate.dedup.minhash import (
    FINGERPRINT,
    band_key,
    band_pairs,
    exact_jaccard,
    identical_sets,
    jaccard_counts,
    minhash_signatures,
    set_fingerprints,
)
from tamis.curate.dedup.near import (
    _SHINGLE_AND_LSH,
    LshCounts,
    NearDedupConfig,
    lsh_info,
    lsh_shape,
    subset,
)
from tamis.curate.dedup.shingles import Shingles, shingle
from tamis.curate.dedup.spill import (
    BucketSpill,
    Engine,
    ShingleStore,
    return_freed_memory,
)
from tamis.errors import DataError

#: the largest band bucket paired in full (the in-memory default of `lsh_candidates`)
MAX_BUCKET = 2000
#: the peak memory of shingling a batch (NumPy temporaries), in multiples of its text bytes
SHINGLE_WORKING_FACTOR = 30
#: bytes of spill per row and band (band u16, key u64, row i64), and per fingerprint row
_BAND_ENTRY = 18
_FINGERPRINT_ENTRY = 32


@dataclass
class _Pass1:
    """What the map stage leaves behind."""

    rows: int = 0
    nulls: int = 0
    counts: LshCounts = field(default_factory=LshCounts)


def _bucket_of(*keys: np.ndarray, n: int) -> np.ndarray:
    h = np.zeros(keys[0].size, dtype=np.uint64)
    for k in keys:
        h = splitmix64(h ^ k.astype(np.uint64))
    return (h % np.uint64(n)).astype(np.int64)


def _map_batch(
    batch: pl.Series,
    offset: int,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
) -> tuple[Shingles, pl.DataFrame, pl.DataFrame]:
    """One batch -> (shingle sets, fingerprints, band keys of the batch's first copies)."""
    sh = shingle(
        batch,
        unit=config.unit,
        ngram=config.ngram,
        lowercase=config.lowercase,
        nfkc=config.nfkc,
    )
    fps = set_fingerprints(sh, offset)
    # a later copy of a set in this batch is never a first copy: no signature needed
    ident = identical_sets(sh)
    reps = np.nonzero(ident == np.arange(sh.n_docs))[0]
    sig = minhash_signatures(subset(sh, reps), num_perm=config.num_perm, seed=seed)
    bands, rows = shape
    keys = pl.DataFrame(
        {
            "band": np.repeat(np.arange(bands, dtype=np.uint16), reps.size),
            "key": np.concatenate([band_key(sig, b, rows) for b in range(bands)])
            if reps.size
            else np.zeros(0, np.uint64),
            "row": np.tile(reps + offset, bands),
        },
        schema={"band": pl.UInt16, "key": pl.UInt64, "row": pl.Int64},
    )
    return sh, fps, keys


def _signatures(
    engine: Engine,
    source: pl.LazyFrame,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
    store: ShingleStore,
    spills: tuple[BucketSpill, BucketSpill],
) -> _Pass1:
    """Stage 1 (map): stream the input, spill shingle sets, fingerprints and band keys."""
    column = config.column
    assert column is not None
    fp_spill, band_spill = spills
    state = _Pass1()
    rows = map_batch_rows(engine, source, column)
    engine.stats.batch_rows = rows
    for batch in engine.batches(source.select(column), rows):
        texts = batch[column]
        sh, fps, keys = _map_batch(texts, state.rows, config, seed, shape)
        store.append(sh)
        fp_spill.add(_bucket_of(*(fps[c].to_numpy() for c in FINGERPRINT), n=fp_spill.n), fps)
        band_spill.add(
            _bucket_of(keys["band"].to_numpy(), keys["key"].to_numpy(), n=band_spill.n), keys
        )
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
        first = frame.select(pl.col("d").min().over(FINGERPRINT).alias("f"), "d")
        later = first.filter(pl.col("f") != pl.col("d"))
        firsts.append(later["f"].to_numpy())
        copies.append(later["d"].to_numpy())
    if not copies:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first_a, copy_a = np.concatenate(firsts), np.concatenate(copies)
    order = np.argsort(copy_a)
    return first_a[order].astype(np.int64), copy_a[order].astype(np.int64)


def _is_in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if sorted_set.size == 0:
        return np.zeros(values.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values


def _candidates(
    band_spill: BucketSpill, copies: np.ndarray, pair_spill: BucketSpill, range_rows: int
) -> int:
    """Stage 3 (keyed by band key): candidate pairs of first copies -> pair spill; oversized."""
    oversized = 0
    for _, frame in band_spill.buckets():
        band, key, row = (frame[c].to_numpy() for c in ("band", "key", "row"))
        alive = ~_is_in_sorted(row, copies)
        band, key, row = band[alive], key[alive], row[alive]
        order = np.lexsort((row, band))
        band, key, row = band[order], key[order], row[order]
        cuts = np.flatnonzero(np.diff(band)) + 1
        for lo, hi in zip(
            np.concatenate([[0], cuts]).tolist(),
            np.concatenate([cuts, [band.size]]).tolist(),
            strict=True,
        ):
            pairs, over = band_pairs(key[lo:hi], row[lo:hi], MAX_BUCKET)
            oversized += over
            if pairs.size:
                pairs = np.sort(pairs, axis=1)
                pair_spill.add(
                    pairs[:, 0] // range_rows,
                    pl.DataFrame({"l": pairs[:, 0], "r": pairs[:, 1]}),
                )
    return oversized


def _verify(
    pair_spill: BucketSpill, store: ShingleStore, threshold: float, counts: LshCounts, budget: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stage 4: unique candidates, exact Jaccard on the stored shingle sets -> verified edges."""
    doc_bytes = 8.0 * max(store.total, 1) / max(store.rows, 1)
    chunk = max(256, int(budget / (2 * doc_bytes * 6)))
    out: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for _, frame in pair_spill.buckets():
        pairs = frame.unique().sort("l", "r")
        left_all, right_all = pairs["l"].to_numpy(), pairs["r"].to_numpy()
        counts.candidates += pairs.height
        for lo in range(0, pairs.height, chunk):
            left, right = left_all[lo : lo + chunk], right_all[lo : lo + chunk]
            need = np.unique(np.concatenate([left, right]))
            jac = exact_jaccard(
                store.gather(need), np.searchsorted(need, left), np.searchsorted(need, right)
            )
            counts.histogram += jaccard_counts(jac)
            ok = jac >= threshold
            out.append((left[ok], right[ok], jac[ok]))
    if not out:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.zeros(0, np.float64)
    left, right, jac = (np.concatenate(x) for x in zip(*out, strict=True))
    counts.verified = int(left.size)
    return left, right, jac


@dataclass
class _Written:
    parts: list[Any]
    rows_out: int
    examples: pl.DataFrame | None


def _write_output(
    engine: Engine,
    source: pl.LazyFrame,
    clusters: pl.DataFrame,
    edges: tuple[np.ndarray, np.ndarray, np.ndarray],
    config: NearDedupConfig,
    issue: str,
    out: Path,
) -> _Written:
    """Stage 5: stream the input again; kept (or flagged) rows to parts; example rows."""
    marks = RowMarks.of(clusters, config.keep, issue)
    nodes, best = best_similarity(*edges)
    show = clusters.height > 0 and config.max_examples > 0
    top = top_clusters(clusters, config.max_examples) if show else None
    wanted = top.select(pl.col("first_row").alias(ROW)) if top is not None else None
    writer = engine.part_writer(out)
    offset, rows_out, sample = 0, 0, []
    for batch in engine.batches(source, engine.pick_batch_rows(source)):
        indexed = batch.with_row_index(ROW, offset=offset)
        score = None
        if config.action == "flag":
            score = flag_scores(nodes, best, offset, offset + batch.height)
        kept = mark_with(indexed, marks, config.action, issue, score).drop(ROW)
        writer.write(kept)
        rows_out += kept.height
        offset += batch.height
        if wanted is not None:
            rows = indexed.with_columns(pl.col(ROW).cast(pl.Int64))
            sample.append(rows.join(wanted, on=ROW, how="semi"))
    parts = writer.close()
    examples = examples_of(top, pl.concat(sample)) if top is not None and sample else None
    return _Written(parts, rows_out, examples)


def bucket_count(engine: Engine, source: pl.LazyFrame, bands: int) -> int:
    """Band buckets such that one (band keys of its rows, with working copies) fits 1/4 of the
    limit."""
    rows = int(source.select(pl.len()).collect().item())
    need = rows * max(bands * _BAND_ENTRY, _FINGERPRINT_ENTRY) * 3
    return max(1, math.ceil(need / (engine.memory_limit / 4)))


def _check_column(source: pl.LazyFrame, column: str) -> None:
    check_text_column(pl.DataFrame(schema=source.collect_schema()), column)


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
    column = config.column
    if column is None:
        raise DataError("text mode needs a text column", field="column", fix="give `column`")
    _check_column(source, column)
    try:
        shape = lsh_shape(config.threshold, config.num_perm, config.bands, config.rows)
    except ValueError as exc:
        raise DataError(str(exc), fix="check ngram, threshold, bands and rows") from None
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
        state = _signatures(engine, source, config, seed, shape, store, (fp_spill, band_spill))
        if state.rows == 0:
            raise DataError("the input has no rows", fix="check the previous step's filters")
        if state.nulls == state.rows:
            check_text_column(pl.DataFrame({column: [None]}, schema={column: pl.String}), column)
        engine.progress("near_dedup: identical shingle sets")
        copy_first, copy_row = _identical(fp_spill)
        state.counts.identical = int(copy_row.size)
        engine.progress("near_dedup: LSH band buckets")
        range_rows = max(1, math.ceil(state.rows / n_buckets))
        pair_spill = BucketSpill(engine, spill / "pairs", n_buckets, flush)
        state.counts.oversized = _candidates(band_spill, copy_row, pair_spill, range_rows)
        engine.progress("near_dedup: verifying candidates")
        vl, vr, vj = _verify(
            pair_spill, store, config.threshold, state.counts, engine.memory_limit / 8
        )
        left = np.concatenate([copy_first, vl])
        right = np.concatenate([copy_row, vr])
        jac = np.concatenate([np.ones(copy_row.size), vj])
        clusters = edge_clusters(left, right)
        engine.progress("near_dedup: writing the kept rows")
        written = _write_output(engine, source, clusters, (left, right, jac), config, issue, out)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
        engine.stats.spill_bytes = spill_before
    removed = removed_count(clusters, config.keep)
    report = cluster_summary(
        state.rows, written.rows_out, clusters, removed, config.keep, config.action
    )
    if written.examples is not None:
        report["examples"] = written.examples.to_dicts()
    params = {**config.model_dump(include=_SHINGLE_AND_LSH), "seed": seed}
    report = {**report, "column": column, **lsh_info(params, *shape, state.counts)}
    pairs = pl.DataFrame(
        {"left": left, "right": right, "jaccard": jac},
        schema={"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64},
    ).sort("left", "right")
    return written.parts, report, clusters, pairs


__all__ = ["bucket_count", "near_dedup_text_bounded"]
