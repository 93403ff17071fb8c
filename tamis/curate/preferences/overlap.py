"""Near-duplicate prompts and eval leakage of prompts, by reusing tamis.curate.dedup/leakage.

Both work on the distinct prompt texts (every turn of a conversation joined), so a prompt that has
many pairs is compared once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl


def near_duplicate_prompts(
    prompts: pl.Series, threshold: float = 0.8, seed: int = 0, ngram: int = 5
) -> tuple[pl.Series, pl.Series, dict[str, Any]]:
    """Per row: a group key (near-duplicate prompts share one), whether the row's prompt is a near
    duplicate of an *earlier, different* prompt, and the near_dedup report."""
    from tamis.curate.dedup import NearDedupConfig, near_dedup_text

    uniq = pl.DataFrame({"prompt": prompts.unique(maintain_order=True)})
    if uniq.height < 2:
        return prompts.alias("group"), pl.Series("dup", [False] * prompts.len()), {"clusters": 0}
    config = NearDedupConfig(
        column="prompt", ngram=ngram, threshold=threshold, action="flag", max_examples=0
    )
    flagged, report, _, _ = near_dedup_text(uniq, config, seed=seed)
    assert isinstance(flagged, pl.DataFrame)
    keys = flagged.select(
        "prompt",
        pl.when(pl.col("near_duplicate_cluster").is_null())
        .then(pl.lit("p:") + pl.col("prompt"))
        .otherwise(pl.lit("c:") + pl.col("near_duplicate_cluster").cast(pl.String))
        .alias("group"),
        pl.col("is_near_duplicate_issue").alias("dup"),
    )
    joined = pl.DataFrame({"prompt": prompts}).join(
        keys, on="prompt", how="left", maintain_order="left"
    )
    info: dict[str, Any] = {
        k: report[k] for k in ("clusters", "duplicates", "threshold") if k in report
    }
    return joined.get_column("group"), joined.get_column("dup").fill_null(False), info


def leaked_prompts(
    prompts: pl.Series,
    evals: Mapping[str, pl.Series],
    *,
    near_threshold: float | None = 0.8,
    ngram: int = 13,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Rows whose prompt occurs in an eval set (exact after normalisation, near-duplicate, or sharing
    a word `ngram`), via `tamis.curate.leakage.find_leakage`; returns the row mask and its report."""
    from tamis.curate.leakage import LeakageConfig, find_leakage

    uniq = pl.DataFrame({"prompt": prompts.unique(maintain_order=True)})
    against = {name: pl.DataFrame({"prompt": s.unique()}) for name, s in evals.items()}
    config = LeakageConfig(
        columns=["prompt"], normalize=True, text="prompt", near_threshold=near_threshold,
        ngram=ngram, target_auc_threshold=None, drop_on=["exact", "near", "ngram"], action="flag",
    )  # fmt: skip
    flagged, report, _ = find_leakage(uniq, against, config, seed=seed)
    bad = set(flagged.filter(pl.col("is_leakage_issue")).get_column("prompt").to_list())
    mask = prompts.is_in(list(bad)).to_numpy()
    keep = ("leaked_rows", "leaked_rows_by_check", "against")
    return mask, {k: report[k] for k in keep if k in report}
