"""Near-duplicate removal of text by MinHash + LSH + exact Jaccard (tabular: `tabular.py`).

    from tamis.curate.dedup import NearDedupConfig, near_dedup_text
    config = NearDedupConfig(column="text", ngram=5, threshold=0.8)
    out, report, clusters, pairs = near_dedup_text(df, config, seed=0)

Text pipeline, numba kernels (`kernels.py`) and NumPy, written as stages an engine can stream or
shuffle (DESIGN.md 3b); `near_dedup_text` runs them in one process (`near_bounded.py` streams them):

1. map (per batch of documents): `shingle` -> each document's set of shingle hashes;
   `minhash_signatures` -> its MinHash signature (`shingles.py`, `minhash.py`).
2. keyed by set fingerprint: `identical_sets` collapses documents with the same shingle set onto
   their first copy (edges of Jaccard 1), so exact copies never crowd the LSH buckets.
3. map then keyed: `band_key` gives each document one bucket key per band; grouping by
   (band, key), `band_pairs` pairs the documents of a bucket (`lsh_candidates` runs both, with
   bands/rows chosen for >= 99.5% candidate probability at the threshold).
4. join: `exact_jaccard` verifies every candidate pair on the true shingle sets (`text_pairs`).
5. global, on the small edge list: `components` (union-find) -> clusters named by their lowest
   row, and `keep` keeps the lowest (first) or highest (last) source row (`clusters.apply_pairs`).

Deterministic for a given seed.

Flag columns (cleanlab convention): `<issue>_cluster`, `is_<issue>_issue` (rows `drop` would remove)
and `<issue>_score` = 1 - the highest verified Jaccard to another row (1 for rows with no match).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple

import numpy as np
import polars as pl
from pydantic import Field, model_validator

from tamis.config import Config
from tamis.curate.dedup.clusters import Action, Keep, NearDedupResult, apply_pairs
from tamis.curate.dedup.keys import check_text_column
from tamis.curate.dedup.minhash import (
    candidate_probability,
    exact_jaccard,
    hist_rows,
    identical_sets,
    jaccard_counts,
    lsh_candidates,
    lsh_params,
    minhash_signatures,
)
from tamis.curate.dedup.shingles import Shingles, Unit, shingle
from tamis.errors import DataError

NonNegative = Annotated[float, Field(ge=0)]


class NearDedupConfig(Config):
    """Near duplicates: text (`column`: MinHash + LSH + exact Jaccard) or tabular (`categorical`
    and/or `numeric`: blocking), and what happens to them."""

    column: str | None = Field(default=None, description="text column (text mode)")
    unit: Unit = Field(default="word", description="shingle on words or characters")
    ngram: int = Field(default=5, ge=1, le=64, description="shingle size in words or characters")
    num_perm: int = Field(default=128, ge=8, le=1024, description="MinHash permutations")
    threshold: float = Field(
        default=0.8, gt=0, le=1, description="Jaccard threshold (true Jaccard)"
    )
    bands: int | None = Field(default=None, ge=1, description="LSH bands (default: from threshold)")
    rows: int | None = Field(
        default=None, ge=1, description="LSH rows per band (default: from threshold)"
    )
    lowercase: bool = Field(default=True, description="lower-case text before shingling")
    nfkc: bool = Field(default=True, description="Unicode NFKC-normalise text before shingling")
    categorical: list[str] | None = Field(
        default=None, description="tabular mode: columns that must match (after strip/casefold)"
    )
    numeric: list[str] | None = Field(
        default=None, description="tabular mode: columns that must be within `tolerance`"
    )
    tolerance: NonNegative | dict[str, NonNegative] = Field(
        default=0.0, description="tabular mode: absolute tolerance, one or per column"
    )
    keep: Keep = Field(default="first", description="cluster survivor")
    action: Action = Field(
        default="drop",
        description="drop, or flag (near_duplicate_cluster, is_near_duplicate_issue, near_duplicate_score)",
    )
    max_examples: int = Field(default=10, ge=0, description="largest clusters shown in the report")

    @model_validator(mode="after")
    def _mode(self) -> NearDedupConfig:
        if self.column is None and self.categorical is None and self.numeric is None:
            raise ValueError("give `column` (text) or `categorical`/`numeric` (tabular)")
        if self.column is not None and (self.categorical or self.numeric):
            raise ValueError("give either `column` (text) or `categorical`/`numeric`, not both")
        return self


#: the fields of `NearDedupConfig` that `text_pairs` takes
_SHINGLE_AND_LSH = {"unit", "ngram", "num_perm", "threshold", "bands", "rows", "lowercase", "nfkc"}


class TextPairs(NamedTuple):
    """Near-duplicate edges of a text collection (row indices into the input)."""

    left: np.ndarray
    right: np.ndarray
    jaccard: np.ndarray
    info: dict[str, Any]
    shingles: Shingles
    identical_to: np.ndarray


def text_pairs(
    texts: pl.Series,
    *,
    unit: Unit = "word",
    ngram: int = 5,
    num_perm: int = 128,
    threshold: float = 0.8,
    seed: int = 0,
    bands: int | None = None,
    rows: int | None = None,
    lowercase: bool = True,
    nfkc: bool = True,
) -> TextPairs:
    """Edges (i, j, jaccard) with true Jaccard >= threshold between documents of `texts`.

    Documents with identical shingle sets are linked to their first copy (jaccard 1.0); the
    remaining edges join the first copies. `expand_pairs` turns these edges into every pair.
    """
    bands, rows = lsh_shape(threshold, num_perm, bands, rows)
    sh = shingle(texts, unit=unit, ngram=ngram, lowercase=lowercase, nfkc=nfkc)
    ident = identical_sets(sh)
    n = sh.n_docs
    idx = np.arange(n, dtype=np.int64)
    copies = np.nonzero((ident >= 0) & (ident != idx))[0]
    reps = np.nonzero(ident == idx)[0]
    # MinHash only the first copy of each distinct set
    sig = minhash_signatures(subset(sh, reps), num_perm=num_perm, seed=seed)
    cand, oversized = lsh_candidates(sig, bands, rows)
    li, ri = reps[cand[:, 0]], reps[cand[:, 1]]
    jac = exact_jaccard(sh, li, ri)
    ok = jac >= threshold
    left = np.concatenate([ident[copies], li[ok]])
    right = np.concatenate([copies, ri[ok]])
    jacc = np.concatenate([np.ones(copies.size), jac[ok]])
    counts = LshCounts(
        without_shingles=int((sh.sizes() == 0).sum()),
        identical=int(copies.size),
        candidates=int(cand.shape[0]),
        verified=int(ok.sum()),
        oversized=oversized,
        histogram=jaccard_counts(jac),
    )
    info = lsh_info(
        dict(unit=unit, ngram=ngram, num_perm=num_perm, threshold=threshold, seed=seed),
        bands,
        rows,
        counts,
    )
    return TextPairs(left, right, jacc, info, sh, ident)


def lsh_shape(
    threshold: float, num_perm: int, bands: int | None, rows: int | None
) -> tuple[int, int]:
    """(bands, rows per band): the given ones, the other derived, or both from the threshold."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    if bands is None and rows is None:
        bands, rows = lsh_params(threshold, num_perm)
    elif bands is None:
        assert rows is not None
        bands = num_perm // rows
    elif rows is None:
        rows = num_perm // bands
    if bands < 1 or rows < 1:
        raise ValueError(f"bands and rows must be >= 1 (num_perm {num_perm})")
    if bands * rows > num_perm:
        raise ValueError(f"bands * rows ({bands}*{rows}) exceeds num_perm ({num_perm})")
    return bands, rows


@dataclass
class LshCounts:
    """What the text pipeline counts (additive: an engine sums them over batches and buckets)."""

    without_shingles: int = 0
    identical: int = 0
    candidates: int = 0
    verified: int = 0
    oversized: int = 0
    histogram: np.ndarray = field(default_factory=lambda: np.zeros(20, dtype=np.int64))


def lsh_info(params: dict[str, Any], bands: int, rows: int, counts: LshCounts) -> dict[str, Any]:
    """The text part of the report (`params`: unit, ngram, num_perm, threshold, seed)."""
    threshold = params["threshold"]
    return {
        "unit": params["unit"],
        "ngram": params["ngram"],
        "num_perm": params["num_perm"],
        "threshold": threshold,
        "bands": bands,
        "rows_per_band": rows,
        "candidate_probability_at_threshold": round(
            candidate_probability(threshold, bands, rows), 6
        ),
        "documents_without_shingles": counts.without_shingles,
        "identical_shingle_sets": counts.identical,
        "candidate_pairs": counts.candidates,
        "verified_pairs": counts.verified,
        "false_candidates": counts.candidates - counts.verified,
        "oversized_buckets": counts.oversized,
        "jaccard_histogram": hist_rows(counts.histogram),
        "seed": params["seed"],
    }


def subset(sh: Shingles, docs: np.ndarray) -> Shingles:
    """The shingle sets of `docs` (in that order) as their own `Shingles`."""
    from tamis.curate.dedup import kernels

    docs = np.ascontiguousarray(docs, dtype=np.int64)
    offsets = np.zeros(docs.size + 1, dtype=np.int64)
    np.cumsum(sh.sizes()[docs], out=offsets[1:])
    hashes = np.empty(int(offsets[-1]), dtype=np.uint64)
    kernels.gather(np.ascontiguousarray(sh.hashes), sh.offsets, docs, offsets, hashes)
    return Shingles(offsets=offsets, hashes=hashes, n_tokens=sh.n_tokens[docs])


def expand_pairs(tp: TextPairs) -> np.ndarray:
    """Every pair (i < j) of documents with Jaccard >= threshold implied by the edges -> (k, 2).

    Copies of a set pair with each other and with every neighbour of their first copy. The result
    can be quadratic in the size of a group of copies; meant for evaluation and small groups.
    """
    n = tp.identical_to.size
    rep = np.where(tp.identical_to >= 0, tp.identical_to, np.arange(n))
    groups = pl.DataFrame({"doc": np.arange(n), "rep": rep}).group_by("rep").agg("doc")
    frame = groups.explode("doc")
    within = (
        frame.join(frame, on="rep", suffix="_r")
        .filter(pl.col("doc") < pl.col("doc_r"))
        .select("doc", "doc_r")
    )
    verified = pl.DataFrame({"a": tp.left, "b": tp.right, "j": tp.jaccard}).filter(pl.col("j") < 2)
    rep_edges = verified.filter(pl.Series(tp.identical_to[tp.right] != tp.left))
    cross = (
        rep_edges.join(frame, left_on="a", right_on="rep")
        .join(frame, left_on="b", right_on="rep", suffix="_r")
        .select(
            pl.min_horizontal("doc", "doc_r").alias("doc"),
            pl.max_horizontal("doc", "doc_r").alias("doc_r"),
        )
    )
    allp = pl.concat([within, cross]).unique()
    return allp.to_numpy().astype(np.int64)


def near_dedup_text(
    df: pl.DataFrame, config: NearDedupConfig, *, seed: int = 0, issue: str = "near_duplicate"
) -> NearDedupResult:
    """Remove (or flag) documents of `config.column` whose shingle-set Jaccard with another is
    >= `config.threshold`.

    Nulls count as empty documents, which are never near-duplicates of anything. Shingles are word
    n-grams (tokens are runs of Unicode letters/digits) or character n-grams; a document shorter
    than `ngram` has one shingle of all its tokens. LSH bands/rows are derived from the threshold
    when omitted (see `lsh_params`). `seed` seeds the MinHash permutations (same seed, same
    output). Clusters are connected components of verified pairs (so two members may be less
    similar than the threshold); keep/action as in `exact_dedup`.

    Returns:
        NearDedupResult(frame, report, clusters, pairs).
    """
    column = config.column
    if column is None:
        raise DataError("text mode needs a text column", field="column", fix="give `column`")
    if df.height == 0:
        raise DataError("the input has no rows", fix="check the previous step's filters")
    check_text_column(df, column)
    try:
        tp = text_pairs(df[column], seed=seed, **config.model_dump(include=_SHINGLE_AND_LSH))
    except ValueError as exc:
        raise DataError(str(exc), fix="check ngram, threshold, bands and rows") from None
    out, report, clusters = apply_pairs(
        df,
        tp.left,
        tp.right,
        tp.jaccard,
        keep=config.keep,
        action=config.action,
        issue=issue,
        max_examples=config.max_examples,
    )
    report = {**report, "column": column, **tp.info}
    pairs = pl.DataFrame(
        {"left": tp.left, "right": tp.right, "jaccard": tp.jaccard},
        schema={"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64},
    ).sort("left", "right")
    return NearDedupResult(out, report, clusters, pairs)


__all__ = [
    "NearDedupConfig",
    "NearDedupResult",
    "TextPairs",
    "expand_pairs",
    "near_dedup_text",
    "text_pairs",
]
