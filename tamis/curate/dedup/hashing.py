"""Vectorised 64-bit hashing of byte spans over Arrow string buffers (our own, version-stable)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

P = np.uint64(0x100000001B3)  # FNV prime, the Horner multiplier
TOKEN_MULT = np.uint64(0x9E3779B97F4A7C15)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, element-wise on uint64 (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


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


def _per_byte_hashes(data: np.ndarray, starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Horner sums of spans computed per byte (powers table + segmented reduceat): long spans."""
    total = int(lens.sum())
    idx = np.repeat(starts, lens) + (np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens))
    pos = np.repeat(lens - 1, lens) - (idx - np.repeat(starts, lens))  # exponent L-1-k
    seg = np.zeros(lens.size, dtype=np.int64)
    np.cumsum(lens[:-1], out=seg[1:])
    with np.errstate(over="ignore"):
        table = np.full(int(lens.max()), P, dtype=np.uint64)
        table[0] = 1
        powers = np.cumprod(table, dtype=np.uint64)
        vals = (data[idx].astype(np.uint64) + np.uint64(1)) * powers[pos]
        out: np.ndarray = np.add.reduceat(vals, seg)
    return out


def tiled_span_hashes(data: np.ndarray, starts: np.ndarray, long_span: int = 64) -> np.ndarray:
    """64-bit hashes of the non-empty spans that tile `data`: span i is data[starts[i]:starts[i+1]].

    h = splitmix64(Horner sum of (byte + 1) with multiplier P, plus length * C), all spans at once:
    spans are ordered by length and the k-th byte of every span longer than k is folded in with one
    vector operation per k (so the work is one pass over the bytes); spans longer than `long_span`
    use a per-byte powers table instead, so one huge span cannot mean a long loop.
    """
    if starts.size == 0:
        return np.zeros(0, dtype=np.uint64)
    starts = starts.astype(np.int64)
    lens = np.diff(np.append(starts, data.shape[0]))
    h = np.zeros(starts.size, dtype=np.uint64)
    long = lens > long_span
    short_idx = np.nonzero(~long)[0]
    order = short_idx[np.argsort(-lens[short_idx].astype(np.int16), kind="stable")]
    sl, ss = lens[order], starts[order]
    hs = np.zeros(order.size, dtype=np.uint64)
    neg = -sl
    with np.errstate(over="ignore"):
        for k in range(int(sl[0]) if sl.size else 0):
            m = int(np.searchsorted(neg, -(k + 1), side="right"))  # spans longer than k
            part = hs[:m]
            part *= P
            part += data[ss[:m] + k].astype(np.uint64) + np.uint64(1)
        h[order] = hs
        if long.any():
            h[long] = _per_byte_hashes(data, starts[long], lens[long])
        h += lens.astype(np.uint64) * TOKEN_MULT
    return splitmix64(h)


__all__ = ["P", "TOKEN_MULT", "splitmix64", "string_buffers", "tiled_span_hashes"]
