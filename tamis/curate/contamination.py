"""Text overlap between a dataset and an eval set: n-gram contamination and near-duplicate pairs."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.near import text_pairs
from tamis.curate.dedup.shingles import shingle


def ngram_contamination(
    df: pl.DataFrame, ev: pl.DataFrame, col: str, n: int, max_rows: int
) -> tuple[dict[str, Any], np.ndarray, pl.DataFrame]:
    """Word n-gram contamination of `ev[col]` by `df[col]` -> (report, input rows hit, table).

    The table lists (eval_row, row, shared_ngrams) for every pair sharing an n-gram.
    """
    a = shingle(df[col], unit="word", ngram=n, as_sets=False)
    b = shingle(ev[col], unit="word", ngram=n, as_sets=False)
    tb = pl.DataFrame({"eval_row": b.doc_ids(), "h": b.hashes}).unique()
    # the input side is usually far larger: keep only its n-grams that occur in the eval set
    ta = pl.DataFrame({"row": a.doc_ids(), "h": a.hashes})
    ta = ta.filter(pl.col("h").is_in(tb["h"].unique().implode())).unique()
    eval_hit = tb.join(ta.select("h").unique(), on="h", how="semi")["eval_row"].unique()
    train_hit = ta["row"].unique()
    shared = (
        ta.join(tb, on="h", how="inner")
        .group_by("eval_row", "row")
        .agg(pl.len().alias("shared_ngrams"))
        .sort("eval_row", "row")
        .head(max_rows)
    )
    items = int((b.sizes() > 0).sum())
    report = {
        "ngram": n,
        "eval_items": items,
        "contaminated_eval_items": int(eval_hit.len()),
        "contaminated_share": eval_hit.len() / items if items else 0.0,
        "input_rows_carrying": int(train_hit.len()),
        "eval_items_shorter_than_ngram": int(((b.n_tokens > 0) & (b.n_tokens < n)).sum()),
    }
    return report, train_hit.to_numpy().astype(np.int64), shared


def near_overlap(
    df: pl.DataFrame,
    ev: pl.DataFrame,
    col: str,
    threshold: float,
    ngram: int,
    num_perm: int,
    seed: int,
    max_rows: int,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray, pl.DataFrame]:
    """Cross-set pairs with true shingle Jaccard >= threshold -> (report, input rows hit, best
    Jaccard per input row, table of (row, eval_row, jaccard))."""
    texts = pl.concat([df[col].cast(pl.String), ev[col].cast(pl.String)])
    n_in = df.height
    tp = text_pairs(texts, ngram=ngram, num_perm=num_perm, threshold=threshold, seed=seed)
    n = texts.len()
    rep = np.where(tp.identical_to >= 0, tp.identical_to, np.arange(n))
    members = pl.DataFrame({"doc": np.arange(n), "rep": rep})
    # edges between first copies (plus each group with itself), then expanded to members
    rep_edges = pl.DataFrame({"a": tp.left, "b": tp.right, "j": tp.jaccard}).filter(
        pl.Series(tp.identical_to[tp.right] != tp.left)
    )
    groups = np.unique(rep)
    edges = pl.concat(
        [
            rep_edges,
            rep_edges.select(pl.col("b").alias("a"), pl.col("a").alias("b"), "j"),
            pl.DataFrame({"a": groups, "b": groups, "j": np.ones(groups.size)}),
        ]
    )
    pairs = (
        edges.join(members, left_on="a", right_on="rep")
        .join(members, left_on="b", right_on="rep", suffix="_r")
        .filter((pl.col("doc") < n_in) & (pl.col("doc_r") >= n_in))
        .select(
            pl.col("doc").alias("row"),
            (pl.col("doc_r") - n_in).alias("eval_row"),
            pl.col("j").alias("jaccard"),
        )
        .group_by("row", "eval_row")
        .agg(pl.col("jaccard").max())
        .sort("row", "eval_row")
    )
    best = np.zeros(n_in)
    rows = pairs["row"].to_numpy()
    np.maximum.at(best, rows, pairs["jaccard"].to_numpy())
    hit = np.unique(rows)
    report = {
        "threshold": threshold,
        "ngram": ngram,
        "input_rows": int(hit.size),
        "eval_rows": int(pairs["eval_row"].n_unique()),
        "pairs": pairs.height,
        "bands": tp.info["bands"],
        "rows_per_band": tp.info["rows_per_band"],
    }
    return report, hit, best, pairs.head(max_rows)
