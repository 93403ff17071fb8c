"""The tasks of near dedup on Ray (`ray_near` runs them): one function per stage of
`tamis.curate.dedup.near_stages`, over a range of rows or a bucket, reading and writing the files
of the stage's spill dir (shared by every node) and returning `ray_files.pack` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from tamis.curate.dedup.near import NearDedupConfig
from tamis.curate.dedup.near_stages import (
    OutputPlan,
    Verified,
    band_buckets,
    bucket_candidates,
    fingerprint_buckets,
    identical_edges,
    signature_batch,
    verify_pairs,
)
from tamis.curate.dedup.shingles import Shingles
from tamis.curate.dedup.spill import return_freed_memory
from tamis.pipelines.engines.memory import row_bytes
from tamis.pipelines.engines.ray_files import (
    pack,
    read_bucket,
    replace_into,
    write_buckets,
    write_ipc,
)

Range = tuple[int, int]  # (first row, rows)


def signature_task(
    source: pl.LazyFrame,
    index: int,
    rows: Range,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
    buckets: int,
    spill: str,
) -> bytes:
    """Stage 1 for rows start..start+n: shingle files, fingerprint and band key bucket files."""
    return_freed_memory()
    start, n = rows
    column = config.column
    assert column is not None
    texts = source.slice(start, n).collect()[column]
    sh, fps, keys = signature_batch(texts, start, config, seed, shape)
    root = Path(spill)
    name = f"{index:06d}"
    hashes = root / "shingles" / f"{name}.u64"
    offsets = root / "shingles" / f"{name}.i64"
    written = write_raw(hashes, sh.hashes.astype("<u8", copy=False))
    written += write_raw(offsets, sh.offsets.astype("<i8"))
    fp_bytes = write_buckets(
        root / "fp" / f"{name}.arrow", fps, fingerprint_buckets(fps, buckets), buckets
    )
    band_bytes = write_buckets(
        root / "bands" / f"{name}.arrow", keys, band_buckets(keys, buckets), buckets
    )
    meta = {
        "rows": texts.len(),
        "nulls": texts.null_count(),
        "without_shingles": int((sh.sizes() == 0).sum()),
        "shingles": int(sh.offsets[-1]),
        "shingle_bytes": written,
        "shuffle_bytes": fp_bytes + band_bytes,
    }
    return pack(meta)


def write_raw(path: Path, values: np.ndarray) -> int:
    return replace_into(path, lambda p: p.write_bytes(values.tobytes()))


def identical_task(files: list[str], bucket: int) -> bytes:
    """Stage 2 for one fingerprint bucket: its (first, copy) edges."""
    frame = read_bucket([Path(f) for f in files], bucket)
    first, copy = identical_edges(frame) if frame.height else (np.zeros(0, np.int64),) * 2
    return pack(
        {}, {"edges": pl.DataFrame({"f": first, "d": copy}, schema={"f": pl.Int64, "d": pl.Int64})}
    )


def candidates_task(
    files: list[str], bucket: int, copies: np.ndarray, range_rows: int, ranges: int, path: str
) -> bytes:
    """Stage 3 for one band bucket: candidate pairs, one record batch per range of left rows."""
    frame = read_bucket([Path(f) for f in files], bucket)
    pairs, oversized = (
        bucket_candidates(frame, copies) if frame.height else (np.zeros((0, 2), np.int64), 0)
    )
    table = pl.DataFrame(
        {"l": pairs[:, 0], "r": pairs[:, 1]}, schema={"l": pl.Int64, "r": pl.Int64}
    )
    written = write_buckets(Path(path), table, pairs[:, 0] // range_rows, ranges)
    return pack({"oversized": oversized, "pairs": int(pairs.shape[0]), "shuffle_bytes": written})


@dataclass
class ShingleFiles:
    """The shingle sets the signature tasks wrote, one pair of files per range of rows.

    Each `gather` maps the files it needs and unmaps them at the end, so the pages it touched
    leave the task's resident memory with it (a cache of maps kept every page touched)."""

    directory: Path
    starts: np.ndarray  # first row of each signature task's range, ascending

    def _files(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        name = f"{k:06d}"
        offsets = np.fromfile(self.directory / f"{name}.i64", dtype="<i8")
        hashes_path = self.directory / f"{name}.u64"
        hashes = (
            np.memmap(hashes_path, dtype="<u8", mode="r")
            if hashes_path.stat().st_size
            else np.zeros(0, "<u8")
        )
        return offsets, hashes

    def gather(self, rows: np.ndarray) -> Shingles:
        """The shingle sets of `rows` (sorted, unique) as one `Shingles` (document i = rows[i])."""
        task = np.searchsorted(self.starts, rows, side="right") - 1
        sizes = np.zeros(rows.size, np.int64)
        chunks = []
        for k in np.unique(task).tolist():
            sel = np.flatnonzero(task == k)
            offsets, hashes = self._files(k)
            local = rows[sel] - self.starts[k]
            start, stop = offsets[local], offsets[local + 1]
            sizes[sel] = stop - start
            if int((stop - start).sum()):
                within = np.arange(int((stop - start).sum())) - np.repeat(
                    np.cumsum(stop - start) - (stop - start), stop - start
                )
                chunks.append(np.asarray(hashes[np.repeat(start, stop - start) + within]))
        ends = np.zeros(rows.size + 1, np.int64)
        np.cumsum(sizes, out=ends[1:])
        flat = np.concatenate(chunks).astype(np.uint64) if chunks else np.zeros(0, np.uint64)
        return Shingles(offsets=ends, hashes=flat, n_tokens=np.zeros(rows.size, np.int64))


def verify_task(
    files: list[str], index: int, shingles: str, starts: np.ndarray, threshold: float, chunk: int
) -> bytes:
    """Stage 4 for one range of left rows: verified edges, candidate count, histogram."""
    frame = read_bucket([Path(f) for f in files], index)
    store = ShingleFiles(Path(shingles), starts)
    result = verify_pairs(frame, store.gather, threshold, chunk) if frame.height else Verified()
    left, right, jac = result.edges()
    edges = pl.DataFrame(
        {"l": left, "r": right, "j": jac}, schema={"l": pl.Int64, "r": pl.Int64, "j": pl.Float64}
    )
    meta = {"candidates": result.candidates, "histogram": result.histogram.tolist()}
    return pack(meta, {"edges": edges})


def output_task(source: pl.LazyFrame, rows: Range, plan: OutputPlan, path: str) -> bytes:
    """Stage 5 for rows start..start+n: the output rows to a chunk file; their sizes and the
    rows among the examples back to the driver."""
    start, n = rows
    batch = source.slice(start, n).collect()
    kept, sample = plan.mark(batch, start)
    written = write_ipc(Path(path), kept)
    frames = {"sizes": pl.DataFrame({"b": row_bytes(kept).cast(pl.Int64)})}
    if sample is not None:
        frames["sample"] = sample
    return pack({"rows_out": kept.height, "chunk_bytes": written}, frames)


__all__ = [
    "ShingleFiles",
    "candidates_task",
    "identical_task",
    "output_task",
    "signature_task",
    "verify_task",
]
