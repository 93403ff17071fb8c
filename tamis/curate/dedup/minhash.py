"""MinHash signatures, LSH banding, exact-Jaccard verification (numba kernels: `kernels.py`).

The pieces are separate so they map onto a distributed engine (see DESIGN.md 3b): signatures are a
per-batch map, banding is a group-by on (band, bucket), verification is a join of candidate pairs
with the shingle sets, and connected components run on the small edge list.

    sh = shingle(texts, unit="word", ngram=5)
    sig = minhash_signatures(sh, num_perm=128, seed=0)
    b, r = lsh_params(0.8, 128)
    pairs = lsh_candidates(sig, b, r)
    jac = exact_jaccard(sh, pairs[:, 0], pairs[:, 1])
"""

from __future__ import annotations

import numpy as np
import polars as pl

from tamis.curate.dedup.shingles import Shingles

EMPTY_SIG = np.uint32(0xFFFFFFFF)


def lsh_params(threshold: float, num_perm: int, target_recall: float = 0.995) -> tuple[int, int]:
    """Bands and rows per band for high recall at `threshold`, then as few false candidates as can.

    The probability that a pair of Jaccard s shares a bucket is 1 - (1 - s^r)^b. Plain LSH puts
    the S-curve's midpoint at the threshold (about half the pairs at the threshold are missed);
    here we take the largest r (fewest false candidates) whose curve still reaches
    `target_recall` at the threshold, with b = num_perm // r. Candidates are verified exactly.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if 1.0 - (1.0 - threshold**r) ** b >= target_recall:
            best = (b, r)
    return best


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """Probability that a pair of Jaccard similarity `s` becomes a candidate."""
    return 1.0 - (1.0 - s**rows) ** bands


def _perm_params(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x6D696E68]))
    a = rng.integers(1, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signatures(
    sh: Shingles,
    num_perm: int = 128,
    seed: int = 0,
    chunk: int = 1 << 16,
    threads: int | None = None,
) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures; documents without shingles get all 0xFFFFFFFF.

    Hash family: multiply-shift h_i(x) = (a_i * x + b_i) >> 32 over 64-bit words (a_i odd), taken
    on the 64-bit shingle hashes, the minimum per document; in a numba kernel (`kernels.minhash`)
    over ranges of whole documents of about `chunk` shingles, on `threads` threads (default: the
    CPUs). Each range writes its own rows, so the result does not depend on the threads.
    """
    from tamis.curate.dedup import kernels

    a, b = _perm_params(num_perm, seed)
    sig = np.full((sh.n_docs, num_perm), EMPTY_SIG, dtype=np.uint32)
    total = int(sh.offsets[-1]) if sh.n_docs else 0
    if total == 0:
        return sig
    spans = kernels.ranges(sh.offsets, max(1, -(-total // max(1, chunk))))
    args = (np.ascontiguousarray(sh.hashes), sh.offsets, a, b, sig)
    kernels.run_ranges(kernels.minhash, args, spans, threads)
    return sig


def pairs_in_buckets(order: np.ndarray, bucket_start: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """All pairs inside each bucket of a sorted order -> (k, 2) doc ids, without a Python loop.

    The member at position k of a bucket of size s pairs with the s - k - 1 members after it.
    """
    if sizes.size == 0:
        return np.zeros((0, 2), dtype=np.int64)
    members = np.repeat(bucket_start, sizes) + (
        np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    )
    later = np.repeat(bucket_start + sizes, sizes) - members - 1  # members after each one
    total = int(later.sum())
    if total == 0:
        return np.zeros((0, 2), dtype=np.int64)
    left = np.repeat(members, later)
    right = left + 1 + (np.arange(total) - np.repeat(np.cumsum(later) - later, later))
    return np.stack([order[left], order[right]], axis=1)


def key_runs(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group equal keys: (order that sorts `key`, starts and sizes of its runs longer than one)."""
    order = np.argsort(key, kind="stable")
    sk = key[order]
    new = np.ones(sk.size, dtype=bool)
    new[1:] = sk[1:] != sk[:-1]
    starts = np.nonzero(new)[0]
    sizes = np.diff(np.append(starts, sk.size))
    multi = sizes > 1
    return order, starts[multi], sizes[multi]


def band_key(sig: np.ndarray, band: int, rows: int) -> np.ndarray:
    """Map stage: the LSH bucket of every document in one band (a 64-bit hash of its `rows` values).

    A pure function of each document's signature, so it can be computed batch by batch.
    """
    from tamis.curate.dedup import kernels

    mult = _perm_params(rows, 0x5EED)[0]
    key = np.empty(sig.shape[0], dtype=np.uint64)
    kernels.band_key(np.ascontiguousarray(sig), band * rows, mult, key)
    return key


def band_pairs(key: np.ndarray, ids: np.ndarray, max_bucket: int) -> tuple[np.ndarray, int]:
    """Keyed stage: documents (`ids`) sharing a band bucket -> (candidate pairs, oversized buckets).

    All pairs inside a bucket; a bucket larger than `max_bucket` is linked as a chain (each member
    to the next) instead, so a huge bucket cannot explode memory.
    """
    order, starts, sizes = key_runs(key)
    if starts.size == 0:
        return np.zeros((0, 2), dtype=np.int64), 0
    ids = ids[order]
    chunks = []
    over = sizes > max_bucket
    if over.any():
        o_starts, o_sizes = starts[over], sizes[over]
        idx = np.concatenate(
            [np.arange(s, s + z - 1) for s, z in zip(o_starts, o_sizes, strict=True)]
        )
        chunks.append(np.stack([ids[idx], ids[idx + 1]], axis=1))
        starts, sizes = starts[~over], sizes[~over]
    chunks.append(pairs_in_buckets(ids, starts, sizes))
    return np.concatenate(chunks).astype(np.int64), int(over.sum())


def lsh_candidates(
    sig: np.ndarray,
    bands: int,
    rows: int,
    *,
    side: np.ndarray | None = None,
    max_bucket: int = 2000,
) -> tuple[np.ndarray, int]:
    """Candidate pairs: documents sharing a bucket in at least one band -> ((k, 2) int64, oversized).

    Pairs are unique with i < j. With `side` (0/1 per document) only cross-side pairs are kept.
    Documents without shingles are never candidates. See `band_key` and `band_pairs`.
    """
    n = sig.shape[0]
    alive = np.nonzero(~(sig == EMPTY_SIG).all(axis=1))[0]
    chunks = []
    oversized = 0
    for band in range(bands):
        pairs, over = band_pairs(band_key(sig[alive], band, rows), alive, max_bucket)
        chunks.append(pairs)
        oversized += over
    pairs = np.concatenate(chunks) if chunks else np.zeros((0, 2), dtype=np.int64)
    if pairs.size == 0:
        return np.zeros((0, 2), dtype=np.int64), oversized
    pairs = np.sort(pairs, axis=1)
    if side is not None:
        pairs = pairs[side[pairs[:, 0]] != side[pairs[:, 1]]]
    code = np.unique(pairs[:, 0] * np.int64(n) + pairs[:, 1])
    return np.stack([code // n, code % n], axis=1), oversized


def exact_jaccard(
    sh: Shingles, left: np.ndarray, right: np.ndarray, threads: int | None = None
) -> np.ndarray:
    """True Jaccard |A & B| / |A | B| of the shingle sets of each pair (0 when both are empty).

    The intersection of two sorted sets is a merge, in a numba kernel (`kernels.intersections`)
    over ranges of pairs on `threads` threads (default: the CPUs).
    """
    from tamis.curate.dedup import kernels

    if left.size == 0:
        return np.zeros(0, dtype=np.float64)
    left = np.ascontiguousarray(left, dtype=np.int64)
    right = np.ascontiguousarray(right, dtype=np.int64)
    sizes = sh.sizes()
    inter = np.empty(left.size, dtype=np.int64)
    work = np.zeros(left.size + 1, dtype=np.int64)
    np.cumsum(sizes[left] + sizes[right] + 1, out=work[1:])
    many = work[-1] > 1 << 20
    spans = kernels.ranges(work, 4 * kernels.default_threads() if many else 1)
    args = (np.ascontiguousarray(sh.hashes), sh.offsets, left, right, inter)
    kernels.run_ranges(kernels.intersections, args, spans, threads)
    union = sizes[left] + sizes[right] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def identical_sets(
    sh: Shingles, fingerprints: pl.DataFrame | None = None, offset: int = 0
) -> np.ndarray:
    """For each document, the first document with the same (non-empty) shingle set, else -1.

    Sets are compared by an order-independent 128-bit fingerprint (size, wrapping sum and minimum
    of the re-mixed shingle hashes). Collapsing identical sets first keeps LSH buckets small on
    corpora with many exact copies. `fingerprints`: `set_fingerprints(sh, offset)` when the
    caller has it already (computed once instead of twice).
    """
    rep = np.full(sh.n_docs, -1, dtype=np.int64)
    frame = set_fingerprints(sh, offset) if fingerprints is None else fingerprints
    if frame.height:
        first = frame.select(pl.col("d").min().over(FINGERPRINT))["d"].to_numpy()
        rep[frame["d"].to_numpy() - offset] = first - offset
    return rep


#: the columns of a shingle set's fingerprint (`set_fingerprints`)
FINGERPRINT = ["s", "m", "n"]


def set_fingerprints(sh: Shingles, offset: int = 0) -> pl.DataFrame:
    """Map stage of `identical_sets`: (d, s, m, n) per non-empty document, d = offset + its index.

    s and m are the wrapping sum and the minimum of the re-mixed shingle hashes, n the set size;
    a pure function of each document, so it can be computed batch by batch.
    """
    sizes = sh.sizes()
    nonempty = np.nonzero(sizes > 0)[0]
    schema = {"d": pl.Int64, "s": pl.UInt64, "m": pl.UInt64, "n": pl.Int64}
    if nonempty.size == 0:
        return pl.DataFrame(schema=schema)
    from tamis.curate.dedup import kernels

    sums = np.empty(nonempty.size, dtype=np.uint64)
    mins = np.empty(nonempty.size, dtype=np.uint64)
    hashes = np.ascontiguousarray(sh.hashes)
    kernels.fingerprints(hashes, sh.offsets, nonempty, np.uint64(0x5BD1E995), sums, mins)
    return pl.DataFrame(
        {"d": nonempty + offset, "s": sums, "m": mins, "n": sizes[nonempty]}, schema=schema
    )


def union_jaccard_hist(jac: np.ndarray, bins: int = 20) -> list[dict[str, float]]:
    """Histogram of Jaccard values on [0, 1] as JSON rows (bin_low, bin_high, count)."""
    return hist_rows(jaccard_counts(jac, bins))


def jaccard_counts(jac: np.ndarray, bins: int = 20) -> np.ndarray:
    """The counts of `union_jaccard_hist` (additive: chunks of pairs can be counted apart)."""
    return np.histogram(jac, bins=bins, range=(0.0, 1.0))[0]


def hist_rows(counts: np.ndarray) -> list[dict[str, float]]:
    """Histogram counts on [0, 1] (equal bins) as JSON rows (bin_low, bin_high, count)."""
    edges = np.linspace(0.0, 1.0, counts.size + 1)
    return [
        {
            "bin_low": round(float(edges[i]), 4),
            "bin_high": round(float(edges[i + 1]), 4),
            "count": int(c),
        }
        for i, c in enumerate(counts)
    ]
