"""Inter-annotator agreement on a long table `(item, annotator, label)`.

    pairs = cohen_kappa_pairs(df, item="item", annotator="worker", label="label")
    counts, classes = vote_counts(df, item="item", label="label")
    fleiss_kappa(counts); krippendorff_alpha_nominal(counts)

Definitions (nominal labels):
- Cohen's kappa of a pair of annotators, on the items both labelled:
  `(p_o - p_e) / (1 - p_e)`, `p_e = sum_c p_a(c) p_b(c)` with each annotator's own marginals.
- Fleiss' kappa over the item x class count matrix `n_ic` with `m_i` ratings per item:
  `P_i = (sum_c n_ic^2 - m_i) / (m_i (m_i - 1))`, `P_e = sum_c p_c^2`,
  `p_c = sum_i n_ic / sum_i m_i`; items with fewer than 2 ratings are left out. With a constant
  number of ratings per item this is Fleiss (1971) exactly; with varying numbers it is the usual
  generalisation.
- Krippendorff's alpha (nominal), from the coincidence matrix:
  `alpha = 1 - (n - 1) * sum_u (m_u^2 - sum_c n_uc^2) / (m_u - 1) / (n^2 - sum_c n_c^2)`, over the
  pairable units (`m_u >= 2`), `n` = number of pairable values, `n_c` their class totals. Missing
  ratings are simply absent rows.

An annotator who labels an item twice: the last row wins (counted in `duplicates_dropped`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.errors import DataError
from tamis.stats import bootstrap_ci as percentile_bootstrap


def check_annotations(
    df: pl.DataFrame, *, item: str, annotator: str, label: str
) -> tuple[pl.DataFrame, int]:
    """Columns present; null labels dropped; one label per (item, annotator), the last one wins."""
    for role, col in (("item", item), ("annotator", annotator), ("label", label)):
        if col not in df.columns:
            raise DataError(
                f"{role} column '{col}' is not in the data (columns: {', '.join(df.columns[:20])})",
                column=col,
                fix=f"set `{role}` to the column holding the {role}",
            )
    clean = df.filter(pl.col(label).is_not_null() & pl.col(item).is_not_null())
    clean = clean.filter(pl.col(annotator).is_not_null())
    dedup = clean.unique(subset=[item, annotator], keep="last", maintain_order=True)
    if dedup.height == 0:
        raise DataError("no annotations with a label", column=label, fix="check the label column")
    return dedup, clean.height - dedup.height


def vote_counts(df: pl.DataFrame, *, item: str, label: str) -> tuple[np.ndarray, list[Any]]:
    """The item x class count matrix (rows in first-appearance order of items) and the classes."""
    classes = df.get_column(label).unique().sort().to_list()
    items = df.get_column(item).unique(maintain_order=True)
    item_idx = pl.DataFrame({item: items, "_i": np.arange(len(items))})
    class_idx = pl.DataFrame(
        {label: pl.Series(classes, dtype=df.schema[label]), "_c": np.arange(len(classes))}
    )
    g = (
        df.group_by([item, label])
        .len()
        .join(item_idx, on=item)
        .join(class_idx, on=label)
        .select("_i", "_c", "len")
    )
    counts = np.zeros((len(items), len(classes)), dtype=np.int64)
    counts[g["_i"].to_numpy(), g["_c"].to_numpy()] = g["len"].to_numpy()
    return counts, classes


def coded_labels(
    df: pl.DataFrame, *, item: str, annotator: str, label: str, items: pl.Series
) -> tuple[pl.DataFrame, Any]:
    """The annotations with item, annotator and class codes (`_i`, `_a`, `_c`: positions in
    `items`, in first-appearance order of annotators, in sorted classes), and the items x
    annotators matrix of class codes (pandas, NaN where an annotator did not label an item,
    columns named by annotator) that cleanlab's multiannotator functions take."""
    import pandas as pd

    classes = df.get_column(label).unique().sort()
    annotators = df.get_column(annotator).unique(maintain_order=True)
    item_idx = pl.DataFrame({item: items, "_i": np.arange(len(items))})
    ann_idx = pl.DataFrame({annotator: annotators, "_a": np.arange(len(annotators))})
    cls_idx = pl.DataFrame({label: classes, "_c": np.arange(len(classes))})
    coded = df.join(item_idx, on=item).join(ann_idx, on=annotator).join(cls_idx, on=label)
    wide = np.full((len(items), len(annotators)), np.nan)
    wide[coded["_i"].to_numpy(), coded["_a"].to_numpy()] = coded["_c"].to_numpy()
    return coded, pd.DataFrame(wide, columns=[str(a) for a in annotators.to_list()])


def _rated_twice(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counts, ratings per item) as floats, for the items rated at least twice."""
    counts = np.asarray(counts, dtype=np.float64)
    m = counts.sum(axis=1)
    keep = m >= 2
    return counts[keep], m[keep]


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa of an item x class count matrix (items with < 2 ratings left out)."""
    counts, m = _rated_twice(counts)
    if len(m) == 0:
        return float("nan")
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    p_bar = p_i.mean()
    p_c = counts.sum(axis=0) / m.sum()
    p_e = float((p_c**2).sum())
    if p_e >= 1.0:
        return float("nan")
    return float((p_bar - p_e) / (1.0 - p_e))


def krippendorff_alpha_nominal(counts: np.ndarray) -> float:
    """Krippendorff's alpha for nominal data from an item x class count matrix."""
    counts, m = _rated_twice(counts)
    if len(m) == 0:
        return float("nan")
    observed_disagreement = ((m**2 - (counts**2).sum(axis=1)) / (m - 1)).sum()
    n_c = counts.sum(axis=0)
    n = n_c.sum()
    expected = n**2 - (n_c**2).sum()
    if expected == 0:
        return float("nan")
    return float(1.0 - (n - 1) * observed_disagreement / expected)


def cohen_kappa_pairs(
    df: pl.DataFrame, *, item: str, annotator: str, label: str, min_overlap: int = 1
) -> pl.DataFrame:
    """Cohen's kappa for every pair of annotators sharing at least `min_overlap` items.

    Columns: annotator_a, annotator_b, n_items, observed_agreement, kappa (NaN when both
    annotators used one and the same class on the shared items).
    """
    base = df.select(
        pl.col(item).alias("_item"),
        pl.col(annotator).cast(pl.String).alias("_ann"),
        pl.col(label).cast(pl.String).alias("_lab"),
    )
    a = base.rename({"_ann": "annotator_a", "_lab": "label_a"})
    b = base.rename({"_ann": "annotator_b", "_lab": "label_b"})
    pairs = a.join(b, on="_item").filter(pl.col("annotator_a") < pl.col("annotator_b"))
    keys = ["annotator_a", "annotator_b"]
    agg = (
        pairs.group_by(keys)
        .agg(
            pl.len().alias("n_items"),
            (pl.col("label_a") == pl.col("label_b")).mean().alias("observed_agreement"),
        )
        .filter(pl.col("n_items") >= min_overlap)
    )
    ma = pairs.group_by([*keys, "label_a"]).len().rename({"label_a": "_c", "len": "na"})
    mb = pairs.group_by([*keys, "label_b"]).len().rename({"label_b": "_c", "len": "nb"})
    pe = (
        ma.join(mb, on=[*keys, "_c"])
        .group_by(keys)
        .agg((pl.col("na") * pl.col("nb")).sum().alias("_nab"))
    )
    out = (
        agg.join(pe, on=keys, how="left")
        .with_columns(
            (pl.col("_nab").fill_null(0) / (pl.col("n_items").cast(pl.Float64) ** 2)).alias("_pe")
        )
        .with_columns(
            pl.when(pl.col("_pe") < 1.0)
            .then((pl.col("observed_agreement") - pl.col("_pe")) / (1.0 - pl.col("_pe")))
            .otherwise(float("nan"))
            .alias("kappa")
        )
        .select(*keys, "n_items", "observed_agreement", "kappa")
        .sort(keys)
    )
    return out


def _none_if_nan(value: float) -> float | None:
    return value if np.isfinite(value) else None


def bootstrap_ci(
    counts: np.ndarray, stat: Any, *, resamples: int = 300, seed: int = 0
) -> dict[str, float | int | None]:
    """95% percentile bootstrap interval of `stat(counts)` over items (rows)."""
    pairable = counts[counts.sum(axis=1) >= 2]
    lo, hi = percentile_bootstrap(pairable, stat, n_boot=resamples, seed=seed, finite_only=True)
    return {"ci_low": _none_if_nan(lo), "ci_high": _none_if_nan(hi), "n": len(pairable)}


def agreement_summary(
    df: pl.DataFrame,
    *,
    item: str,
    annotator: str,
    label: str,
    min_overlap: int = 1,
    seed: int = 0,
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Fleiss' kappa, Krippendorff's alpha (each with a bootstrap CI over items) and the mean
    pairwise Cohen's kappa, plus the pair table. Undefined values are None."""
    counts, classes = vote_counts(df, item=item, label=label)
    pairs = cohen_kappa_pairs(
        df, item=item, annotator=annotator, label=label, min_overlap=min_overlap
    )
    kappas = pairs.get_column("kappa").to_numpy()
    finite = kappas[np.isfinite(kappas)]
    weights = pairs.get_column("n_items").to_numpy()[np.isfinite(kappas)]
    per_item = counts.sum(axis=1)
    summary = {
        "items": int(counts.shape[0]),
        "annotations": int(counts.sum()),
        "annotators": int(df.get_column(annotator).n_unique()),
        "classes": [str(c) for c in classes],
        "items_with_2plus_annotations": int((per_item >= 2).sum()),
        "mean_annotations_per_item": float(per_item.mean()) if len(per_item) else 0.0,
        "fleiss_kappa": _none_if_nan(fleiss_kappa(counts)),
        "fleiss_kappa_ci": bootstrap_ci(counts, fleiss_kappa, seed=seed),
        "krippendorff_alpha": _none_if_nan(krippendorff_alpha_nominal(counts)),
        "krippendorff_alpha_ci": bootstrap_ci(counts, krippendorff_alpha_nominal, seed=seed),
        "cohen_kappa_pairs": int(pairs.height),
        "mean_cohen_kappa": float(finite.mean()) if len(finite) else None,
        "weighted_mean_cohen_kappa": (
            float(np.average(finite, weights=weights)) if len(finite) else None
        ),
    }
    return summary, pairs
