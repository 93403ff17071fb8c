"""MinHash signatures, LSH banding, exact-Jaccard verification and connected components, vectorised.

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

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import polars as pl

from tamis.curate.dedup.hashing import splitmix64
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
    chunk: int = 1 << 13,
    threads: int | None = None,
) -> np.ndarray:
    """(n_docs, num_perm) uint32 MinHash signatures; documents without shingles get all 0xFFFFFFFF.

    Hash family: multiply-shift h_i(x) = (a_i * x + b_i) >> 32 over 64-bit words (a_i odd), taken
    on the 64-bit shingle hashes; the minimum per document is a segmented reduce (reduceat), in
    chunks of whole documents of about `chunk` shingles, so memory stays bounded; `threads`
    (default: the CPU count) work on the chunks at once.
    """
    a, b = _perm_params(num_perm, seed)
    n = sh.n_docs
    sig = np.full((n, num_perm), EMPTY_SIG, dtype=np.uint32)
    sizes = sh.sizes()
    nonempty = np.nonzero(sizes > 0)[0]
    if nonempty.size == 0:
        return sig
    offsets = sh.offsets
    # split the non-empty documents into runs of about `chunk` shingles
    cum = offsets[nonempty + 1]
    cuts = np.searchsorted(cum, np.arange(chunk, int(cum[-1]) + chunk, chunk), side="left")
    bounds = np.unique(np.concatenate([[0], np.minimum(cuts + 1, nonempty.size), [nonempty.size]]))
    shift = np.uint64(32)
    runs = list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))

    def work(part: list[tuple[int, int]]) -> None:
        buf = np.empty((chunk, num_perm), dtype=np.uint64)
        for lo, hi in part:
            docs = nonempty[lo:hi]
            start, stop = int(offsets[docs[0]]), int(offsets[docs[-1] + 1])
            x = sh.hashes[start:stop]
            if x.size > buf.shape[0]:
                buf = np.empty((x.size, num_perm), dtype=np.uint64)
            hv = buf[: x.size]
            with np.errstate(over="ignore"):
                np.multiply(x[:, None], a[None, :], out=hv)
                hv += b[None, :]
                hv >>= shift
            sig[docs] = np.minimum.reduceat(hv, offsets[docs] - start, axis=0)

    # NumPy releases the GIL inside these loops: threads share the chunks (disjoint output rows, so
    # the result does not depend on the number of threads)
    n_threads = max(1, min(threads or (os.cpu_count() or 1), len(runs)))
    if n_threads == 1:
        work(runs)
    else:
        with ThreadPoolExecutor(n_threads) as pool:
            list(pool.map(work, [runs[i::n_threads] for i in range(n_threads)]))
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
    mult = _perm_params(rows, 0x5EED)[0]
    block = sig[:, band * rows : (band + 1) * rows]
    key = np.zeros(sig.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(rows):
            key += block[:, col].astype(np.uint64) * mult[col]
    return splitmix64(key)


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


def exact_jaccard(sh: Shingles, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """True Jaccard |A & B| / |A | B| of the shingle sets of each pair, vectorised.

    Every shingle of the smaller set is looked up in the other set with one `searchsorted` on the
    global array of (document, shingle) keys; the found ones are summed per pair.
    """
    if left.size == 0:
        return np.zeros(0, dtype=np.float64)
    sizes = sh.sizes()
    swap = sizes[left] > sizes[right]
    small = np.where(swap, right, left)
    other = np.where(swap, left, right)
    # one sortable int64 key per (document, shingle): the document id in the high bits and the top
    # bits of the shingle hash below (monotone, so the CSR order is already the key order). When two
    # shingles of one document share those top bits (rare), dense shingle ids are used instead.
    doc_ids = sh.doc_ids()
    bits = 63 - max(1, sh.n_docs.bit_length())
    code = (sh.hashes >> np.uint64(64 - bits)).astype(np.int64)
    keys = (doc_ids << bits) | code
    if keys.size > 1 and bool((keys[1:] == keys[:-1]).any()):
        uniq, inv = np.unique(sh.hashes, return_inverse=True)
        bits = max(1, int(uniq.size).bit_length())
        code = inv.astype(np.int64)
        keys = (doc_ids << bits) | code
    inter = np.zeros(left.size, dtype=np.int64)
    step = 1 << 18
    starts_all = sh.offsets[small]
    lens_all = sizes[small]
    for lo in range(0, left.size, step):
        hi = min(lo + step, left.size)
        lens = lens_all[lo:hi]
        total = int(lens.sum())
        if total == 0:
            continue
        pair = np.repeat(np.arange(lo, hi), lens)
        within = np.arange(total) - np.repeat(np.cumsum(lens) - lens, lens)
        elem = np.repeat(starts_all[lo:hi], lens) + within
        query = (other[pair] << bits) | code[elem]
        pos = np.searchsorted(keys, query)
        pos[pos >= keys.size] = keys.size - 1
        # keys are unique, so the one candidate is checked on the full 64-bit hash
        found = (keys[pos] == query) & (sh.hashes[pos] == sh.hashes[elem])
        inter[lo:hi] = np.bincount(pair - lo, weights=found, minlength=hi - lo).astype(np.int64)
    union = sizes[left] + sizes[right] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def identical_sets(sh: Shingles) -> np.ndarray:
    """For each document, the first document with the same (non-empty) shingle set, else -1.

    Sets are compared by an order-independent 128-bit fingerprint (size, wrapping sum and minimum
    of the re-mixed shingle hashes). Collapsing identical sets first keeps LSH buckets small on
    corpora with many exact copies.
    """
    rep = np.full(sh.n_docs, -1, dtype=np.int64)
    frame = set_fingerprints(sh)
    if frame.height:
        first = frame.select(pl.col("d").min().over(FINGERPRINT))["d"].to_numpy()
        rep[frame["d"].to_numpy()] = first
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
    h = splitmix64(sh.hashes ^ np.uint64(0x5BD1E995))
    with np.errstate(over="ignore"):
        sums = np.add.reduceat(h, sh.offsets[nonempty])
    mins = np.minimum.reduceat(h, sh.offsets[nonempty])
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
