"""Text overlap between a dataset and an eval set: n-gram contamination and near-duplicate pairs.

Both are joins built on the eval set (the small side) and probed by the input batch by batch, as
the checks of `leakage_checks.py`: the eval set's n-gram hashes, and its MinHash band keys.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.minhash import band_key, exact_jaccard, identical_sets, minhash_signatures
from tamis.curate.dedup.near import lsh_shape, subset
from tamis.curate.dedup.shingles import Shingles, shingle
from tamis.curate.leakage_checks import Capped

#: candidate pairs (input set, eval set) verified at a time
CANDIDATE_CHUNK = 1 << 20
#: bytes of eval text shingled at a time (shingling peaks at ~30x the text it is given)
EVAL_CHUNK_BYTES = 2 << 20


def shingle_eval(texts: pl.Series, **kwargs: Any) -> Shingles:
    """`shingle(texts, **kwargs)` of an eval set, in chunks of about `EVAL_CHUNK_BYTES` of text
    (each document's shingles depend on it alone, so the chunks do not change them)."""
    size = texts.cast(pl.String).str.len_bytes().fill_null(0).cum_sum().to_numpy()
    cuts = np.searchsorted(
        size,
        np.arange(EVAL_CHUNK_BYTES, int(size[-1]) if size.size else 0, EVAL_CHUNK_BYTES),
        side="right",
    )
    bounds = np.unique(np.concatenate([[0], cuts, [texts.len()]]))
    parts = [
        shingle(texts.slice(lo, hi - lo), **kwargs)
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return _joined(*parts) if parts else shingle(texts, **kwargs)


class NgramCheck:
    """Word n-gram contamination of the eval set's text by the input's (GPT-3 / Llama style).

    The eval set's distinct n-gram hashes are sorted once (with the eval rows of each); a batch's
    n-grams are looked up by binary search, so a batch costs its own size, not the eval set's.
    The table lists (eval_row, row, shared_ngrams) for every pair sharing an n-gram.
    """

    def __init__(self, ev: pl.DataFrame, col: str, n: int, max_rows: int) -> None:
        self.col, self.n = col, n
        b = shingle_eval(ev[col], unit="word", ngram=n, as_sets=False)
        # distinct (hash, eval row) sorted by hash (NumPy: a Polars unique here peaks far higher)
        doc = b.doc_ids()
        order = np.lexsort((doc, b.hashes))
        h, doc = b.hashes[order], doc[order]
        first = np.ones(h.size, dtype=bool)
        first[1:] = (h[1:] != h[:-1]) | (doc[1:] != doc[:-1])
        self.rows_of = doc[first]
        self.hashes, self.starts, counts = np.unique(
            h[first], return_index=True, return_counts=True
        )
        self.counts = counts.astype(np.int64)
        # a bitmap of the hashes' low bits (~1/8 full) turns most input n-grams away cheaply
        self.bits = int(np.clip(np.ceil(np.log2(max(self.hashes.size, 1) * 8)), 16, 24))
        self.seen = np.zeros(1 << self.bits, dtype=bool)
        self.seen[(self.hashes & np.uint64((1 << self.bits) - 1)).astype(np.int64)] = True
        self.items = int((b.sizes() > 0).sum())
        self.short = int(((b.n_tokens > 0) & (b.n_tokens < n)).sum())
        self.eval_hit = np.zeros(ev.height, dtype=bool)
        self.carrying = 0
        self.shared = Capped(max_rows, ["eval_row", "row"], ordered=False)

    def probe(self, batch: pl.DataFrame, offset: int) -> np.ndarray:
        a = shingle(batch[self.col], unit="word", ngram=self.n, as_sets=False)
        low = (a.hashes & np.uint64((1 << self.bits) - 1)).astype(np.int64)
        maybe = np.flatnonzero(self.seen[low])
        h = a.hashes[maybe]
        k = np.minimum(np.searchsorted(self.hashes, h), max(self.hashes.size - 1, 0))
        found = self.hashes[k] == h if self.hashes.size else np.zeros(k.size, dtype=bool)
        # (input row, eval n-gram) once each, then every eval row holding that n-gram
        doc = a.doc_ids()[maybe[found]]
        ta = pl.DataFrame({"row": doc + offset, "k": k[found]}).unique()
        ks = ta["k"].to_numpy()
        sizes = self.counts[ks]
        within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
        eval_rows = self.rows_of[np.repeat(self.starts[ks], sizes) + within]
        self.eval_hit[eval_rows] = True
        rows = ta["row"].unique().to_numpy().astype(np.int64)
        self.carrying += int(rows.size)
        self.shared.add(
            pl.DataFrame({"eval_row": eval_rows, "row": np.repeat(ta["row"].to_numpy(), sizes)})
            .group_by("eval_row", "row")
            .agg(pl.len().alias("shared_ngrams"))
        )
        return rows - offset

    def finish(self) -> tuple[dict[str, Any], pl.DataFrame]:
        contaminated = int(self.eval_hit.sum())
        report = {
            "ngram": self.n,
            "eval_items": self.items,
            "contaminated_eval_items": contaminated,
            "contaminated_share": contaminated / self.items if self.items else 0.0,
            "input_rows_carrying": self.carrying,
            "eval_items_shorter_than_ngram": self.short,
        }
        return report, self.shared.table()


def _first_copies(sh: Shingles) -> tuple[np.ndarray, np.ndarray]:
    """(first copy of each document's set or -1 when it has no shingle, the first copies)."""
    ident = identical_sets(sh)
    return ident, np.nonzero(ident == np.arange(sh.n_docs))[0]


def _band_keys(
    sh: Shingles, reps: np.ndarray, num_perm: int, seed: int, shape: Any
) -> pl.DataFrame:
    bands, rows = shape
    sig = minhash_signatures(subset(sh, reps), num_perm=num_perm, seed=seed)
    return pl.DataFrame(
        {
            "band": np.repeat(np.arange(bands, dtype=np.uint16), reps.size),
            "key": np.concatenate([band_key(sig, b, rows) for b in range(bands)])
            if reps.size
            else np.zeros(0, np.uint64),
            "set": np.tile(reps, bands).astype(np.int64),
        },
        schema={"band": pl.UInt16, "key": pl.UInt64, "set": pl.Int64},
    )


def _joined(*parts: Shingles) -> Shingles:
    """Collections of shingle sets as one (each one's documents after the previous ones')."""
    ends = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
    return Shingles(
        offsets=np.concatenate(
            [np.zeros(1, np.int64)] + [p.offsets[1:] + e for p, e in zip(parts, ends, strict=True)]
        ),
        hashes=np.concatenate([p.hashes for p in parts]),
        n_tokens=np.concatenate([p.n_tokens for p in parts]),
    )


class NearCheck:
    """Cross-set pairs (input row, eval row) whose word-shingle sets have a true Jaccard >= the
    threshold: MinHash + LSH band keys of the eval set, probed by the input's, every candidate
    verified exactly. Documents with the same set share every band key and have Jaccard 1, so
    each side is reduced to its first copies and the verified pairs expanded to the copies.
    The table lists (row, eval_row, jaccard)."""

    def __init__(
        self,
        ev: pl.DataFrame,
        col: str,
        threshold: float,
        ngram: int,
        num_perm: int,
        seed: int,
        max_rows: int,
    ) -> None:
        self.col, self.threshold, self.ngram = col, threshold, ngram
        self.num_perm, self.seed = num_perm, seed
        self.shape = lsh_shape(threshold, num_perm, None, None)
        self.eval_sh = shingle_eval(ev[col].cast(pl.String), unit="word", ngram=ngram)
        ident, reps = _first_copies(self.eval_sh)
        self.eval_keys = _band_keys(self.eval_sh, reps, num_perm, seed, self.shape)
        # eval rows of each first copy (its copies included), and how many sets share a key
        ok = ident >= 0
        self.eval_members = pl.DataFrame(
            {"set": ident[ok], "eval_row": np.nonzero(ok)[0].astype(np.int64)}
        )
        self.bucket = self.eval_keys.group_by("band", "key").agg(pl.len().alias("c"))
        self.eval_hit = np.zeros(ev.height, dtype=bool)
        self.input_rows = self.pairs = 0
        self.table = Capped(max_rows, ["row", "eval_row"], ordered=True)

    def probe(self, batch: pl.DataFrame, offset: int) -> tuple[np.ndarray, np.ndarray]:
        """The batch's rows with a near match, and the best Jaccard of each row of the batch."""
        sh = shingle(batch[self.col].cast(pl.String), unit="word", ngram=self.ngram)
        ident, reps = _first_copies(sh)
        keys = _band_keys(sh, reps, self.num_perm, self.seed, self.shape)
        # input sets in chunks of at most CANDIDATE_CHUNK raw candidates (a shared band key each)
        per_set = (
            keys.join(self.bucket, on=["band", "key"])
            .group_by("set")
            .agg(pl.col("c").sum())
            .sort("set")
        )
        sets, counts = per_set["set"].to_numpy(), per_set["c"].to_numpy().astype(np.int64)
        chunk = (np.cumsum(counts) - counts) // CANDIDATE_CHUNK
        edges = [self._verify(sh, keys, sets[chunk == c]) for c in np.unique(chunk)]
        ok = ident >= 0
        members = pl.DataFrame({"set": ident[ok], "row": np.nonzero(ok)[0].astype(np.int64)})
        found = (
            pl.concat(edges)
            if edges
            else pl.DataFrame(schema={"set": pl.Int64, "eval_set": pl.Int64, "jaccard": pl.Float64})
        )
        pairs = (
            found.join(members, on="set")
            .join(self.eval_members.rename({"set": "eval_set"}), on="eval_set")
            .select((pl.col("row") + offset).alias("row"), "eval_row", "jaccard")
            .sort("row", "eval_row")
        )
        self.table.add(pairs)
        self.pairs += pairs.height
        self.eval_hit[pairs["eval_row"].to_numpy()] = True
        local = pairs["row"].to_numpy() - offset
        best = np.zeros(batch.height)
        np.maximum.at(best, local, pairs["jaccard"].to_numpy())
        hit = np.unique(local)
        self.input_rows += int(hit.size)
        return hit, best

    def _verify(self, sh: Shingles, keys: pl.DataFrame, sets: np.ndarray) -> pl.DataFrame:
        """Candidates of the input sets `sets`: exact Jaccard, those >= the threshold."""
        cand = (
            keys.filter(pl.col("set").is_in(pl.Series(sets).implode()))
            .join(self.eval_keys, on=["band", "key"], suffix="_eval")
            .select("set", pl.col("set_eval").alias("eval_set"))
            .unique()
        )
        left, right = cand["set"].to_numpy(), cand["eval_set"].to_numpy()
        mine, theirs = np.unique(left), np.unique(right)
        both = _joined(subset(sh, mine), subset(self.eval_sh, theirs))
        jac = exact_jaccard(
            both, np.searchsorted(mine, left), mine.size + np.searchsorted(theirs, right)
        )
        keep = jac >= self.threshold
        return pl.DataFrame(
            {"set": left[keep], "eval_set": right[keep], "jaccard": jac[keep]},
            schema={"set": pl.Int64, "eval_set": pl.Int64, "jaccard": pl.Float64},
        )

    def finish(self) -> tuple[dict[str, Any], pl.DataFrame]:
        report = {
            "threshold": self.threshold,
            "ngram": self.ngram,
            "input_rows": self.input_rows,
            "eval_rows": int(self.eval_hit.sum()),
            "pairs": self.pairs,
            "bands": self.shape[0],
            "rows_per_band": self.shape[1],
        }
        return report, self.table.table()
