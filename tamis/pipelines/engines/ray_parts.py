"""Parts written by Ray tasks with the local engine's boundaries (the same `parts_hash`).

A step's output arrives as numbered chunk files (Arrow IPC, in source order) that tasks wrote
into a spill dir, with each row's deterministic size (`row_bytes`). `PartWriter` cuts a part
when it reaches `max_rows` rows or `max_bytes` row bytes, a function of the row sequence alone;
the driver replays that rule on the sizes (`plan_cuts`, a few bytes per row), and one task per
part reads its rows' slices of the chunk files and writes the part (`write_part`: same rows,
same bytes, same sha256) into the step's output dir. The driver only lists the parts.

A selecting keyed step (`KeyedStep.key_columns`) has no chunk files: its output rows are input
rows, whose sizes the bucket tasks sent back, so the driver plans the cuts on the kept rows'
sizes and each part task reads the span of input rows its part covers and keeps its rows
(`write_selected_parts`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import StepError
from tamis.pipelines.engines.parts import PartInfo, part_name, write_part
from tamis.pipelines.engines.ray_files import get_all, pack, read_ipc_slice, remote, unpack
from tamis.pipelines.steps.base import ROW

Piece = tuple[int, int, int]  # (chunk, first row in the chunk, rows)


def plan_cuts(sizes: np.ndarray, max_rows: int, max_bytes: int) -> list[tuple[int, int]]:
    """The [start, stop) row ranges of the parts `PartWriter` cuts from rows of these sizes."""
    n = int(sizes.size)
    cum = np.cumsum(sizes.astype(np.int64))
    cuts, start = [], 0
    while start < n:
        base = int(cum[start - 1]) if start else 0
        by_rows = start + max(max_rows, 1) - 1
        by_bytes = int(np.searchsorted(cum, base + max_bytes, side="left"))
        cut = min(by_rows, max(by_bytes, start))
        if cut >= n:
            cuts.append((start, n))
            break
        cuts.append((start, cut + 1))
        start = cut + 1
    return cuts


def pieces_of(chunk_rows: list[int], start: int, stop: int) -> list[Piece]:
    """The slices of the chunks that hold rows start..stop-1 of their concatenation."""
    bounds = np.concatenate([[0], np.cumsum(chunk_rows, dtype=np.int64)])
    out: list[Piece] = []
    first = int(np.searchsorted(bounds, start, side="right")) - 1
    for c in range(max(first, 0), len(chunk_rows)):
        lo, hi = max(start, int(bounds[c])), min(stop, int(bounds[c + 1]))
        if lo >= stop:
            break
        if hi > lo:
            out.append((c, lo - int(bounds[c]), hi - lo))
    return out


def part_task(files: list[str], pieces: list[Piece], schema_file: str, path: str) -> bytes:
    """Write one part from slices of chunk files (cast to the first chunk's schema, as
    `PartWriter` casts later batches to the first one's)."""
    schema = pl.read_ipc_schema(schema_file)
    frames = []
    for chunk, start, rows in pieces:
        frame = read_ipc_slice(Path(files[chunk]), start, rows)
        if frame.schema != schema:
            frame = frame.select(list(schema)).cast(dict(schema.items()))
        frames.append(frame)
    whole = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    info = write_part(whole, Path(path))
    return pack({"part": dict(info)})


def write_parts(
    ray: Any,
    files: list[Path],
    sizes: list[np.ndarray],
    out: Path,
    bounds: tuple[int, int],
    schema_from: int = 0,
) -> tuple[list[PartInfo], list[dict[str, Any]]]:
    """Plan the parts of the chunk files' rows and have tasks write them into `out`; returns
    the parts (in order) and the tasks' meta (nodes, memory)."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [int(s.size) for s in sizes]
    cuts = plan_cuts(np.concatenate(sizes) if sizes else np.zeros(0, np.int64), *bounds)
    names = [str(f) for f in files]
    schema_file = names[schema_from]
    jobs = [
        remote(part_task).remote(
            names, pieces_of(rows, lo, hi), schema_file, str(out / part_name(i))
        )
        for i, (lo, hi) in enumerate(cuts or [(0, 0)])  # no rows: one empty part with the schema
    ]
    metas = [unpack(blob)[0] for blob in get_all(ray, jobs, "writing the parts")]
    parts = [PartInfo(**m["part"]) for m in metas]  # type: ignore[typeddict-item]
    return parts, metas


def selected_part_task(
    source: pl.LazyFrame, span: tuple[int, int], kept: pl.DataFrame, path: str
) -> bytes:
    """Write one part of a selecting step: input rows start..start+n (a slice of the step's
    LazyFrame) joined with the part's `kept` rows (`ROW`, then the columns the step adds), in
    source order."""
    start, n = span
    batch = source.slice(start, n).collect()
    if batch.height != n:
        raise StepError(
            f"the input gave {batch.height:,} of rows {start:,}+{n:,} when read again",
            fix="run `tamis verify` to find a damaged version, then build again",
        )
    rows = batch.with_row_index(ROW, offset=start).with_columns(pl.col(ROW).cast(pl.UInt64))
    if kept.width > 1:  # the step's new columns joined on
        frame = rows.join(kept, on=ROW, how="inner", maintain_order="left")
    else:  # a plain selection
        frame = rows.join(kept, on=ROW, how="semi", maintain_order="left")
    info = write_part(frame.drop(ROW), Path(path))
    return pack({"part": dict(info)})


def write_selected_parts(
    ray: Any,
    source: Any,
    kept: pl.DataFrame,
    sizes: np.ndarray,
    out: Path,
    bounds: tuple[int, int],
) -> tuple[list[PartInfo], list[dict[str, Any]]]:
    """The parts of a selecting step's output: `kept` (`ROW` and new columns, in source order)
    and each output row's size; one task per part reads its span of the input (`source`, a Ray
    reference to the step's LazyFrame). Returns the parts (in order) and the tasks' meta."""
    out.mkdir(parents=True, exist_ok=True)
    rows = kept[ROW].cast(pl.Int64).to_numpy()
    jobs = []
    for i, (lo, hi) in enumerate(plan_cuts(sizes, *bounds) or [(0, 0)]):  # no rows: one empty
        span = (int(rows[lo]), int(rows[hi - 1] - rows[lo]) + 1) if hi > lo else (0, 0)
        part = kept.slice(lo, hi - lo)
        jobs.append(remote(selected_part_task).remote(source, span, part, str(out / part_name(i))))
    metas = [unpack(blob)[0] for blob in get_all(ray, jobs, "writing the parts")]
    parts = [PartInfo(**m["part"]) for m in metas]  # type: ignore[typeddict-item]
    return parts, metas


__all__ = [
    "part_task",
    "pieces_of",
    "plan_cuts",
    "selected_part_task",
    "write_parts",
    "write_selected_parts",
]
