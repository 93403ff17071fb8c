"""64-bit hashing of byte spans over Arrow string buffers (our own, version-stable)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

P = np.uint64(0x100000001B3)  # FNV prime, the Horner multiplier
TOKEN_MULT = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic), in a kernel."""
    from tamis.curate.dedup import kernels

    x = np.ascontiguousarray(np.asarray(x).astype(np.uint64, copy=False))
    out = np.empty(x.shape, dtype=np.uint64)
    kernels.mix_all(x.reshape(-1), out.reshape(-1))
    return out


def string_buffers(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(utf-8 bytes as uint8, int64 offsets) of a non-null string Series, zero-copy where possible."""
    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():
        arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    if data_buf is None or offsets.size == 0:
        return np.zeros(0, np.uint8), np.zeros(len(arr) + 1, np.int64)
    data = np.frombuffer(data_buf, dtype=np.uint8)[int(offsets[0]) : int(offsets[-1])]
    return data, offsets - offsets[0]


def tiled_span_hashes(
    data: np.ndarray, starts: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """64-bit hashes of the non-empty spans that tile `data`: span i is data[starts[i]:starts[i+1]].

    h = splitmix64(Horner sum of (byte + 1) with multiplier P, plus length * TOKEN_MULT), one pass
    over the bytes in a numba kernel (`kernels.span_hashes`), on `threads` threads (default: the
    CPUs; the result does not depend on it).
    """
    from tamis.curate.dedup import kernels

    out = np.empty(starts.size, dtype=np.uint64)
    if starts.size == 0:
        return out
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    weights = np.append(starts, data.shape[0])
    spans = kernels.ranges(weights, 4 * kernels.default_threads() if data.size > 1 << 20 else 1)
    kernels.run_ranges(kernels.span_hashes, (data, starts, out), spans, threads)
    return out


__all__ = ["P", "TOKEN_MULT", "splitmix64", "string_buffers", "tiled_span_hashes"]
