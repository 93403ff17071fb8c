"""The stages of near dedup of text, as functions of one batch, one bucket or one range of rows.

Both engines call these (one implementation): the local bounded engine streams them through its
spill (`near_bounded.py`), the Ray engine runs them as tasks over the input's row ranges and
buckets (`tamis.pipelines.engines.ray_near`).

1. `signature_batch` (map, per batch of rows numbered by source position): shingle sets, set
   fingerprints and, for the first copy of each set in the batch, the band keys;
2. `identical_edges` (keyed by fingerprint): the first row of each shingle set -> (first, copy);
3. `bucket_candidates` (keyed by (band, key)): candidate pairs of the first copies of a bucket;
4. `verify_pairs` (per range of the left row): unique candidates, exact Jaccard on the rows'
   shingle sets -> verified edges, the candidate count and the Jaccard histogram;
5. `components` on the driver (`edge_clusters`, union-find over the small edge list), then
   `OutputPlan.mark` per batch (keep rule: lowest, or highest, source position) and
   `near_report` (report and tables).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
    subset,
)
from tamis.curate.dedup.shingles import Shingles, shingle

#: the largest band bucket paired in full (the in-memory default of `lsh_candidates`)
MAX_BUCKET = 2000
EMPTY_PAIRS = pl.DataFrame(schema={"l": pl.Int64, "r": pl.Int64})


def bucket_of(*keys: np.ndarray, n: int) -> np.ndarray:
    """The spill bucket (0..n-1) of rows by a hash of their key columns."""
    h = np.zeros(keys[0].size, dtype=np.uint64)
    for k in keys:
        h = splitmix64(h ^ k.astype(np.uint64))
    return (h % np.uint64(n)).astype(np.int64)


def fingerprint_buckets(fps: pl.DataFrame, n: int) -> np.ndarray:
    return bucket_of(*(fps[c].to_numpy() for c in FINGERPRINT), n=n)


def band_buckets(keys: pl.DataFrame, n: int) -> np.ndarray:
    return bucket_of(keys["band"].to_numpy(), keys["key"].to_numpy(), n=n)


def signature_batch(
    batch: pl.Series,
    offset: int,
    config: NearDedupConfig,
    seed: int,
    shape: tuple[int, int],
) -> tuple[Shingles, pl.DataFrame, pl.DataFrame]:
    """Stage 1: one batch (rows offset..) -> (shingle sets, fingerprints, band keys of the
    batch's first copies)."""
    sh = shingle(
        batch,
        unit=config.unit,
        ngram=config.ngram,
        lowercase=config.lowercase,
        nfkc=config.nfkc,
    )
    fps = set_fingerprints(sh, offset)
    # a later copy of a set in this batch is never a first copy: no signature needed
    ident = identical_sets(sh, fps, offset)  # the fingerprints computed once
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


def identical_edges(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Stage 2, one fingerprint bucket: (first row, copy row) of every later copy of a set."""
    first = frame.select(pl.col("d").min().over(FINGERPRINT).alias("f"), "d")
    later = first.filter(pl.col("f") != pl.col("d"))
    return later["f"].to_numpy().astype(np.int64), later["d"].to_numpy().astype(np.int64)


def sorted_by_copy(
    firsts: list[np.ndarray], copies: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """All buckets' identical edges, sorted by the copy row."""
    if not copies:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first_a, copy_a = np.concatenate(firsts), np.concatenate(copies)
    order = np.argsort(copy_a, kind="stable")
    return first_a[order].astype(np.int64), copy_a[order].astype(np.int64)


def _is_in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    if sorted_set.size == 0:
        return np.zeros(values.size, dtype=bool)
    pos = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[pos] == values


def bucket_candidates(frame: pl.DataFrame, copies: np.ndarray) -> tuple[np.ndarray, int]:
    """Stage 3, one band bucket: the candidate pairs (left < right) of its first copies
    (`copies`: the sorted rows that are later copies of a set) and the oversized bucket count."""
    band, key, row = (frame[c].to_numpy() for c in ("band", "key", "row"))
    alive = ~_is_in_sorted(row, copies)
    band, key, row = band[alive], key[alive], row[alive]
    order = np.lexsort((row, band))
    band, key, row = band[order], key[order], row[order]
    cuts = np.flatnonzero(np.diff(band)) + 1
    out, oversized = [], 0
    for lo, hi in zip(
        np.concatenate([[0], cuts]).tolist(),
        np.concatenate([cuts, [band.size]]).tolist(),
        strict=True,
    ):
        pairs, over = band_pairs(key[lo:hi], row[lo:hi], MAX_BUCKET)
        oversized += over
        if pairs.size:
            out.append(np.sort(pairs, axis=1).astype(np.int64))
    if not out:
        return np.zeros((0, 2), np.int64), oversized
    return np.concatenate(out), oversized


@dataclass
class Verified:
    """Stage 4's result over some ranges: verified edges, candidate count, Jaccard histogram."""

    left: list[np.ndarray] = field(default_factory=list)
    right: list[np.ndarray] = field(default_factory=list)
    jaccard: list[np.ndarray] = field(default_factory=list)
    candidates: int = 0
    histogram: np.ndarray = field(default_factory=lambda: jaccard_counts(np.zeros(0)))

    def add(self, other: Verified) -> None:
        self.left += other.left
        self.right += other.right
        self.jaccard += other.jaccard
        self.candidates += other.candidates
        self.histogram = self.histogram + other.histogram

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.left:
            empty = np.zeros(0, np.int64)
            return empty, empty, np.zeros(0, np.float64)
        return tuple(np.concatenate(x) for x in (self.left, self.right, self.jaccard))  # type: ignore[return-value]


def verify_pairs(
    pairs: pl.DataFrame,
    gather: Callable[[np.ndarray], Shingles],
    threshold: float,
    chunk: int,
) -> Verified:
    """Stage 4, one range of left rows: unique candidates (sorted), verified `chunk` pairs at a
    time by `exact_jaccard` on the shingle sets `gather(sorted unique rows)` returns."""
    pairs = pairs.unique().sort("l", "r")
    left_all, right_all = pairs["l"].to_numpy(), pairs["r"].to_numpy()
    result = Verified(candidates=pairs.height)
    for lo in range(0, pairs.height, chunk):
        left, right = left_all[lo : lo + chunk], right_all[lo : lo + chunk]
        need = np.unique(np.concatenate([left, right]))
        jac = exact_jaccard(gather(need), np.searchsorted(need, left), np.searchsorted(need, right))
        result.histogram = result.histogram + jaccard_counts(jac)
        ok = jac >= threshold
        result.left.append(left[ok])
        result.right.append(right[ok])
        result.jaccard.append(jac[ok])
    return result


def verify_chunk(doc_bytes: float, budget: float) -> int:
    """Pairs verified at a time: their shingle sets (and working copies) fit `budget` bytes."""
    return max(256, int(budget / (2 * doc_bytes * 6)))


@dataclass
class OutputPlan:
    """Stage 5: what marking a batch needs of the clusters (computed once on the driver)."""

    marks: RowMarks
    nodes: np.ndarray
    best: np.ndarray
    action: str
    issue: str
    top: pl.DataFrame | None
    clusters: pl.DataFrame
    edges: tuple[np.ndarray, np.ndarray, np.ndarray]

    @classmethod
    def of(cls, edges: tuple[np.ndarray, ...], config: NearDedupConfig, issue: str) -> OutputPlan:
        """Connected components of the edges (union-find), the keep rule's marks, the examples."""
        left, right, jac = edges
        clusters = edge_clusters(left, right)
        nodes, best = best_similarity(left, right, jac)
        show = clusters.height > 0 and config.max_examples > 0
        top = top_clusters(clusters, config.max_examples) if show else None
        marks = RowMarks.of(clusters, config.keep, issue)
        return cls(marks, nodes, best, config.action, issue, top, clusters, (left, right, jac))

    def for_tasks(self) -> OutputPlan:
        """The plan without what only the driver needs (shipped to every output task)."""
        empty = (np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        return OutputPlan(
            self.marks, self.nodes, self.best, self.action, self.issue, self.top,
            self.clusters.head(0), empty,
        )  # fmt: skip

    def mark(self, batch: pl.DataFrame, offset: int) -> tuple[pl.DataFrame, pl.DataFrame | None]:
        """One batch (rows offset..) -> (its output rows, its rows among the example rows)."""
        indexed = batch.with_row_index(ROW, offset=offset)
        score = None
        if self.action == "flag":
            score = flag_scores(self.nodes, self.best, offset, offset + batch.height)
        kept = mark_with(indexed, self.marks, self.action, self.issue, score).drop(ROW)
        sample = None
        if self.top is not None:
            wanted = self.top.select(pl.col("first_row").alias(ROW))
            rows = indexed.with_columns(pl.col(ROW).cast(pl.Int64))
            sample = rows.join(wanted, on=ROW, how="semi")
        return kept, sample


def near_report(
    plan: OutputPlan,
    rows_in: int,
    rows_out: int,
    samples: list[pl.DataFrame],
    config: NearDedupConfig,
    shape: tuple[int, int],
    counts: LshCounts,
    seed: int,
) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame]:
    """(report, clusters, pairs) once the output is written."""
    clusters = plan.clusters
    removed = removed_count(clusters, config.keep)
    report = cluster_summary(rows_in, rows_out, clusters, removed, config.keep, config.action)
    if plan.top is not None and samples:
        report["examples"] = examples_of(plan.top, pl.concat(samples)).to_dicts()
    params = {**config.model_dump(include=_SHINGLE_AND_LSH), "seed": seed}
    report = {**report, "column": config.column, **lsh_info(params, *shape, counts)}
    left, right, jac = plan.edges
    pairs = pl.DataFrame(
        {"left": left, "right": right, "jaccard": jac},
        schema={"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64},
    ).sort("left", "right")
    return report, clusters, pairs


def all_edges(
    identical: tuple[np.ndarray, np.ndarray], verified: Verified
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The identical-set edges (Jaccard 1) followed by the verified ones."""
    copy_first, copy_row = identical
    vl, vr, vj = verified.edges()
    return (
        np.concatenate([copy_first, vl]),
        np.concatenate([copy_row, vr]),
        np.concatenate([np.ones(copy_row.size), vj]),
    )


__all__ = [
    "EMPTY_PAIRS",
    "MAX_BUCKET",
    "OutputPlan",
    "Verified",
    "all_edges",
    "band_buckets",
    "bucket_candidates",
    "bucket_of",
    "fingerprint_buckets",
    "identical_edges",
    "near_report",
    "signature_batch",
    "sorted_by_copy",
    "verify_chunk",
    "verify_pairs",
]
