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
from tamis.curate.dedup.spill import read_runs, return_freed_memory
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

    Each `gather` reads the rows it needs from each file with plain reads (`read_runs`), so
    nothing it touched stays in the task's resident memory."""

    directory: Path
    starts: np.ndarray  # first row of each signature task's range, ascending

    def gather(self, rows: np.ndarray) -> Shingles:
        """The shingle sets of `rows` (sorted, unique) as one `Shingles` (document i = rows[i])."""
        task = np.searchsorted(self.starts, rows, side="right") - 1
        offsets_of = {
            k: np.fromfile(self.directory / f"{k:06d}.i64", dtype="<i8")
            for k in np.unique(task).tolist()
        }
        local_rows = rows - self.starts[task]
        start = np.empty(rows.size, np.int64)
        stop = np.empty(rows.size, np.int64)
        for k, offsets in offsets_of.items():
            sel = task == k
            start[sel], stop[sel] = offsets[local_rows[sel]], offsets[local_rows[sel] + 1]
        ends = np.zeros(rows.size + 1, np.int64)
        np.cumsum(stop - start, out=ends[1:])
        hashes = np.zeros(int(ends[-1]), np.uint64)
        for k in offsets_of:
            sel = np.flatnonzero(task == k)
            if sel.size and ends[sel[-1] + 1] > ends[sel[0]]:
                with open(self.directory / f"{k:06d}.u64", "rb") as fh:
                    part = np.zeros(int(ends[sel[-1] + 1] - ends[sel[0]]), np.uint64)
                    read_runs(
                        fh, start[sel], stop[sel], ends[sel[0] : sel[-1] + 2] - ends[sel[0]], part
                    )
                    hashes[ends[sel[0]] : ends[sel[-1] + 1]] = part
        return Shingles(offsets=ends, hashes=hashes, n_tokens=np.zeros(rows.size, np.int64))


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
