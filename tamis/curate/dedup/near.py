"""Near-duplicate removal: text by MinHash + LSH + exact Jaccard, tabular by blocking.

    from tamis.curate.dedup import near_dedup_text, near_dedup_tabular
    out, report, clusters, pairs = near_dedup_text(df, "text", ngram=5, threshold=0.8, seed=0)

Text pipeline (all vectorised, see `tamis.curate.dedup.minhash`): shingle hashes per document -> documents with an
identical shingle set collapsed onto their first copy -> MinHash signatures -> LSH with bands/rows
chosen for >= 99.5% candidate probability at the threshold -> every candidate pair verified by its
true Jaccard on the shingle sets -> connected components (union-find) -> one representative kept per
component. Deterministic for a given seed.

Flag columns (cleanlab convention): `<issue>_cluster`, `is_<issue>_issue` (rows `drop` would remove)
and `<issue>_score` = 1 - the highest verified Jaccard to another row (1 for rows with no match).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import polars as pl

from tamis.curate.dedup.clusters import (
    Action,
    Keep,
    NearDedupResult,
    apply_pairs,
    check_keep_action,
)
from tamis.curate.dedup.keys import check_text_column
from tamis.curate.dedup.minhash import (
    candidate_probability,
    exact_jaccard,
    identical_sets,
    lsh_candidates,
    lsh_params,
    minhash_signatures,
    union_jaccard_hist,
)
from tamis.curate.dedup.shingles import Shingles, Unit, shingle
from tamis.curate.dedup.tabular import near_dedup_tabular, tabular_pairs
from tamis.errors import StepError


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
    sh = shingle(texts, unit=unit, ngram=ngram, lowercase=lowercase, nfkc=nfkc)
    ident = identical_sets(sh)
    n = sh.n_docs
    idx = np.arange(n, dtype=np.int64)
    copies = np.nonzero((ident >= 0) & (ident != idx))[0]
    reps = np.nonzero(ident == idx)[0]
    # MinHash only the first copy of each distinct set
    sub = Shingles(
        offsets=np.concatenate([[0], np.cumsum(sh.sizes()[reps])]).astype(np.int64),
        hashes=_gather_sets(sh, reps),
        n_tokens=sh.n_tokens[reps],
    )
    sig = minhash_signatures(sub, num_perm=num_perm, seed=seed)
    cand, oversized = lsh_candidates(sig, bands, rows)
    li, ri = reps[cand[:, 0]], reps[cand[:, 1]]
    jac = exact_jaccard(sh, li, ri)
    ok = jac >= threshold
    left = np.concatenate([ident[copies], li[ok]])
    right = np.concatenate([copies, ri[ok]])
    jacc = np.concatenate([np.ones(copies.size), jac[ok]])
    info = {
        "unit": unit,
        "ngram": ngram,
        "num_perm": num_perm,
        "threshold": threshold,
        "bands": bands,
        "rows_per_band": rows,
        "candidate_probability_at_threshold": round(
            candidate_probability(threshold, bands, rows), 6
        ),
        "documents_without_shingles": int((sh.sizes() == 0).sum()),
        "identical_shingle_sets": int(copies.size),
        "candidate_pairs": int(cand.shape[0]),
        "verified_pairs": int(ok.sum()),
        "false_candidates": int((~ok).sum()),
        "oversized_buckets": oversized,
        "jaccard_histogram": union_jaccard_hist(jac),
        "seed": seed,
    }
    return TextPairs(left, right, jacc, info, sh, ident)


def _gather_sets(sh: Shingles, docs: np.ndarray) -> np.ndarray:
    sizes = sh.sizes()[docs]
    total = int(sizes.sum())
    if total == 0:
        return np.zeros(0, dtype=np.uint64)
    within = np.arange(total) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return sh.hashes[np.repeat(sh.offsets[docs], sizes) + within]


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
    df: pl.DataFrame,
    column: str,
    *,
    unit: Unit = "word",
    ngram: int = 5,
    num_perm: int = 128,
    threshold: float = 0.8,
    bands: int | None = None,
    rows: int | None = None,
    seed: int = 0,
    lowercase: bool = True,
    nfkc: bool = True,
    keep: Keep = "first",
    action: Action = "drop",
    issue: str = "near_duplicate",
    max_examples: int = 10,
    step: str = "near_dedup",
) -> NearDedupResult:
    """Remove (or flag) documents whose shingle-set Jaccard with another is >= `threshold`.

    Args:
        df: the rows; `column` holds the text (nulls count as empty documents, which are never
            near-duplicates of anything).
        unit, ngram: shingles are word n-grams (tokens are runs of Unicode letters/digits) or
            character n-grams; a document shorter than `ngram` has one shingle of all its tokens.
        num_perm: MinHash permutations. threshold: Jaccard threshold on the true shingle sets.
        bands, rows: LSH banding; derived from the threshold when omitted (see `lsh_params`).
        seed: seeds the MinHash permutations; same seed, same output.
        lowercase, nfkc: text normalisation before shingling.
        keep, action, issue, max_examples: as in `exact_dedup`; clusters are connected components
            of verified pairs (so two members may be less similar than the threshold).

    Returns:
        NearDedupResult(frame, report, clusters, pairs).
    """
    check_keep_action(keep, action, step=step)
    if df.height == 0:
        raise StepError("the input has no rows", step=step, fix="check the previous step's filters")
    check_text_column(df, column, step=step)
    try:
        tp = text_pairs(
            df[column],
            unit=unit,
            ngram=ngram,
            num_perm=num_perm,
            threshold=threshold,
            seed=seed,
            bands=bands,
            rows=rows,
            lowercase=lowercase,
            nfkc=nfkc,
        )
    except ValueError as exc:
        raise StepError(str(exc), step=step, fix="check ngram, threshold, bands and rows") from None
    out, report, clusters = apply_pairs(
        df,
        tp.left,
        tp.right,
        tp.jaccard,
        keep=keep,
        action=action,
        issue=issue,
        max_examples=max_examples,
    )
    report = {**report, "column": column, **tp.info}
    pairs = pl.DataFrame(
        {"left": tp.left, "right": tp.right, "jaccard": tp.jaccard},
        schema={"left": pl.Int64, "right": pl.Int64, "jaccard": pl.Float64},
    ).sort("left", "right")
    return NearDedupResult(out, report, clusters, pairs)


__all__ = [
    "NearDedupResult",
    "TextPairs",
    "expand_pairs",
    "near_dedup_tabular",
    "near_dedup_text",
    "tabular_pairs",
    "text_pairs",
]
