"""Numba kernels of text near dedup: span hashes, ASCII words, n-gram sets, MinHash, Jaccard.

Imported lazily (by `hashing`, `shingles` and `minhash` inside their functions), so `import tamis`
and builds without near dedup never load numba. Every kernel is `njit(nogil=True, cache=True)`: it
releases the GIL, so `run_ranges` runs one kernel on disjoint ranges of documents in threads, each
writing its own rows of a shared output (the result does not depend on the number of threads).
The compiled code is cached next to this file, or under NUMBA_CACHE_DIR; when no cache directory
is writable the kernels are compiled on every process start instead.

All arithmetic is on uint64 (wrapping); the hashes are those documented in `hashing.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numba
import numpy as np

from tamis.curate.dedup.hashing import TOKEN_MULT, P

_ONE = np.uint64(1)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_MAX32 = np.uint64(0xFFFFFFFF)


def _kernel(fn: Callable[..., Any]) -> Any:
    """njit(nogil, cache), or without the on-disk cache when no cache directory is usable."""
    try:
        return numba.njit(nogil=True, cache=True)(fn)
    except RuntimeError:  # "cannot cache function ...: no locator available"
        return numba.njit(nogil=True)(fn)


@_kernel
def _mix(x: Any) -> Any:
    """splitmix64's finaliser of one uint64 (as `hashing.splitmix64`)."""
    x ^= x >> _S30
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


@_kernel
def _span_hash(data: Any, start: int, stop: int) -> Any:
    h = np.uint64(0)
    for k in range(start, stop):
        h = h * P + np.uint64(data[k]) + _ONE
    return _mix(h + np.uint64(stop - start) * TOKEN_MULT)


@_kernel
def span_hashes(data: Any, starts: Any, out: Any, lo: int, hi: int) -> None:
    """out[i] = hash of data[starts[i]:starts[i+1]] (the last span ends at the end of data)."""
    n = starts.shape[0]
    for i in range(lo, hi):
        stop = starts[i + 1] if i + 1 < n else data.shape[0]
        out[i] = _span_hash(data, starts[i], stop)


@_kernel
def _is_word_byte(c: Any) -> bool:
    return (48 <= c < 58) or (65 <= c < 91) or (97 <= c < 123)


@_kernel
def _word_hash(data: Any, start: int, stop: int, lower: bool) -> Any:
    """`_span_hash` of an ASCII word, with A-Z read as a-z when `lower`."""
    h = np.uint64(0)
    for k in range(start, stop):
        c = data[k]
        if lower and 65 <= c < 91:
            c += 32
        h = h * P + np.uint64(c) + _ONE
    return _mix(h + np.uint64(stop - start) * TOKEN_MULT)


@_kernel
def ascii_word_counts(
    data: Any, offsets: Any, counts: Any, nonascii: Any, lo: int, hi: int
) -> None:
    """counts[d] = the runs of [A-Za-z0-9] in document d (bytes offsets[d]:offsets[d+1]);
    nonascii[d] = whether it has a byte >= 0x80."""
    for d in range(lo, hi):
        c = 0
        prev = False
        high = False
        for k in range(offsets[d], offsets[d + 1]):
            byte = data[k]
            high |= byte >= 128
            word = _is_word_byte(byte)
            if word and not prev:
                c += 1
            prev = word
        counts[d] = c
        nonascii[d] = high


@_kernel
def ascii_word_hashes(
    data: Any, offsets: Any, skip: Any, lower: bool, token_offsets: Any, out: Any, lo: int, hi: int
) -> None:
    """The hash of every [A-Za-z0-9] run (lower-cased when `lower`) of documents lo..hi, in text
    order, at token_offsets[d] (documents with skip[d] are left alone)."""
    for d in range(lo, hi):
        if skip[d]:
            continue
        j = token_offsets[d]
        start = -1
        stop = offsets[d + 1]
        for k in range(offsets[d], stop + 1):
            word = k < stop and _is_word_byte(data[k])
            if word and start < 0:
                start = k
            elif not word and start >= 0:
                out[j] = _word_hash(data, start, k, lower)
                j += 1
                start = -1


@_kernel
def ngram_sets(
    units: Any,
    unit_offsets: Any,
    ngram: int,
    as_sets: bool,
    out_offsets: Any,
    out: Any,
    sizes: Any,
    lo: int,
    hi: int,
) -> None:
    """Hashes of the n-grams of each document's unit hashes, written at out_offsets[d].

    A document of L >= ngram units has L - ngram + 1 n-grams, one of 0 < L < ngram units one
    shingle of all of them. With `as_sets` each document's hashes are sorted and repeats dropped;
    sizes[d] is the number written.
    """
    tmp = np.empty(1024, dtype=np.uint64)
    counts = np.empty(2 * 1024 + 2, dtype=np.int64)
    for d in range(lo, hi):
        s = unit_offsets[d]
        n_units = unit_offsets[d + 1] - s
        o = out_offsets[d]
        if n_units == 0:
            sizes[d] = 0
            continue
        width = min(n_units, ngram)
        m = n_units - width + 1
        tail = np.uint64(width) * TOKEN_MULT
        for j in range(m):
            h = np.uint64(0)
            for k in range(width):
                h = h * P + units[s + j + k]
            out[o + j] = _mix(h + tail)
        if not as_sets:
            sizes[d] = m
            continue
        if tmp.shape[0] < m:
            tmp = np.empty(2 * m, dtype=np.uint64)
            counts = np.empty(4 * m + 2, dtype=np.int64)
        seg = out[o : o + m]
        _sort_uniform(seg, tmp, counts)
        c = 1
        for j in range(1, m):
            if seg[j] != seg[c - 1]:
                seg[c] = seg[j]
                c += 1
        sizes[d] = c


@_kernel
def _insertion_sort(x: Any, lo: int, hi: int) -> None:
    for i in range(lo + 1, hi):
        v = x[i]
        j = i - 1
        while j >= lo and x[j] > v:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = v


@_kernel
def _sort_uniform(seg: Any, tmp: Any, counts: Any) -> None:
    """Sort uint64 hashes (about uniform) in place: a bucket pass on the top bits (about one
    bucket per value), then each bucket by insertion sort (or np.sort when it is large)."""
    m = seg.shape[0]
    if m <= 32:
        _insertion_sort(seg, 0, m)
        return
    bits = 1
    while (1 << bits) < m:
        bits += 1
    nb = 1 << bits
    shift = np.uint64(64 - bits)
    counts[: nb + 1] = 0
    for j in range(m):
        counts[np.int64(seg[j] >> shift) + 1] += 1
    for b in range(1, nb + 1):
        counts[b] += counts[b - 1]
    for j in range(m):
        b = np.int64(seg[j] >> shift)
        tmp[counts[b]] = seg[j]
        counts[b] += 1
    start = 0
    for b in range(nb):
        end = counts[b]
        if end - start > 16:
            tmp[start:end].sort()
        elif end - start > 1:
            _insertion_sort(tmp, start, end)
        start = end
    seg[:] = tmp[:m]


@_kernel
def compact(values: Any, offsets: Any, sizes: Any, new_offsets: Any) -> None:
    """Move values[offsets[d]:offsets[d]+sizes[d]] to new_offsets[d] (new <= old), in place."""
    for d in range(sizes.shape[0]):
        src, dst = offsets[d], new_offsets[d]
        if src != dst:
            for k in range(sizes[d]):
                values[dst + k] = values[src + k]


@_kernel
def mix_all(x: Any, out: Any) -> None:
    """out[i] = splitmix64's finaliser of x[i]."""
    for i in range(x.shape[0]):
        out[i] = _mix(np.uint64(x[i]))


@_kernel
def band_key(sig: Any, start: int, mult: Any, out: Any) -> None:
    """out[d] = splitmix64(sum over c of sig[d, start + c] * mult[c]) (one LSH band)."""
    for d in range(sig.shape[0]):
        key = np.uint64(0)
        for c in range(mult.shape[0]):
            key += np.uint64(sig[d, start + c]) * mult[c]
        out[d] = _mix(key)


@_kernel
def fingerprints(hashes: Any, offsets: Any, docs: Any, salt: Any, sums: Any, mins: Any) -> None:
    """Wrapping sum and minimum of splitmix64(h ^ salt) over the hashes of each of `docs`."""
    for i in range(docs.shape[0]):
        total = np.uint64(0)
        low = np.uint64(0xFFFFFFFFFFFFFFFF)
        for k in range(offsets[docs[i]], offsets[docs[i] + 1]):
            v = _mix(hashes[k] ^ salt)
            total += v
            low = min(low, v)
        sums[i] = total
        mins[i] = low


@_kernel
def gather(values: Any, offsets: Any, docs: Any, new_offsets: Any, out: Any) -> None:
    """out[new_offsets[i]:new_offsets[i+1]] = values of document docs[i] (CSR offsets)."""
    for i in range(docs.shape[0]):
        src = offsets[docs[i]]
        dst = new_offsets[i]
        for k in range(new_offsets[i + 1] - dst):
            out[dst + k] = values[src + k]


@_kernel
def minhash(hashes: Any, offsets: Any, a: Any, b: Any, sig: Any, lo: int, hi: int) -> None:
    """sig[d, i] = min over document d's hashes x of (a[i] * x + b[i]) >> 32 (rows lo..hi).

    Rows of documents without hashes are left as they are.
    """
    num_perm = a.shape[0]
    mins = np.empty(num_perm, dtype=np.uint64)
    for d in range(lo, hi):
        if offsets[d] == offsets[d + 1]:
            continue
        mins[:] = _MAX32
        for k in range(offsets[d], offsets[d + 1]):
            x = hashes[k]
            for i in range(num_perm):
                v = (a[i] * x + b[i]) >> _S32
                if v < mins[i]:
                    mins[i] = v
        for i in range(num_perm):
            sig[d, i] = np.uint32(mins[i])


@_kernel
def intersections(
    hashes: Any, offsets: Any, left: Any, right: Any, out: Any, lo: int, hi: int
) -> None:
    """out[p] = |set(left[p]) & set(right[p])| of sorted unique sets (a merge), pairs lo..hi."""
    for p in range(lo, hi):
        i, i_end = offsets[left[p]], offsets[left[p] + 1]
        j, j_end = offsets[right[p]], offsets[right[p] + 1]
        c = 0
        while i < i_end and j < j_end:
            x, y = hashes[i], hashes[j]
            if x == y:
                c += 1
                i += 1
                j += 1
            elif x < y:
                i += 1
            else:
                j += 1
        out[p] = c


def default_threads() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def ranges(weights_cum: np.ndarray, pieces: int) -> list[tuple[int, int]]:
    """Split items 0..n into up to `pieces` contiguous ranges of about equal weight.

    `weights_cum` has n + 1 entries (CSR offsets: item i weighs weights_cum[i+1] - weights_cum[i]).
    """
    n = weights_cum.shape[0] - 1
    if n <= 0:
        return []
    pieces = max(1, min(pieces, n))
    total = int(weights_cum[-1] - weights_cum[0])
    targets = weights_cum[0] + (np.arange(1, pieces) * total) // pieces
    cuts = np.searchsorted(weights_cum, targets, side="left")
    bounds = np.unique(np.concatenate([[0], np.clip(cuts, 0, n), [n]]))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def run_ranges(
    kernel: Callable[..., None],
    args: tuple[Any, ...],
    spans: list[tuple[int, int]],
    threads: int | None = None,
) -> None:
    """kernel(*args, lo, hi) for every (lo, hi) in `spans`, on up to `threads` threads."""
    n_threads = max(1, min(threads or default_threads(), len(spans)))
    if n_threads == 1:
        for lo, hi in spans:
            kernel(*args, lo, hi)
        return
    with ThreadPoolExecutor(n_threads) as pool:
        list(pool.map(lambda span: kernel(*args, *span), spans))


__all__ = [
    "ascii_word_counts",
    "ascii_word_hashes",
    "compact",
    "default_threads",
    "gather",
    "fingerprints",
    "intersections",
    "band_key",
    "mix_all",
    "minhash",
    "ngram_sets",
    "ranges",
    "run_ranges",
    "span_hashes",
]
