"""Curation of preference pairs: identical/empty pairs, duplicates, eval leakage, length bias.

Works on the output of any builder, in the standard (text) or conversational (messages) format.

- `curate_pairs` drops pairs whose chosen and rejected are identical (`identical`, compared after
  stripping whitespace), that have an empty response (`empty_response`) or prompt (`empty_prompt`),
  and exact duplicate pairs (`duplicate_pair`, via `tamis.curate.dedup.exact_dedup` on the
  prompt/chosen/rejected text), then optionally rebalances length (see below).
- `rebalance_by_length` removes (seeded) pairs of the majority side among "chosen is longer" and
  "chosen is shorter" until both sides have the same count, so length stops predicting the label
  (`length_rebalance`); pairs of equal length are kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config, load_config
from tamis.curate.preferences.common import (
    Drops,
    PairResult,
    nothing_left,
    text_view,
)
from tamis.curate.preferences.overlap import leaked_prompts, near_duplicate_prompts
from tamis.curate.preferences.stats import build_report, length_bias, length_diffs
from tamis.errors import DataError


class PreferenceCurateConfig(Config):
    """What `preference_curate` drops, and whether it rebalances length."""

    drop_identical: bool = Field(True, description="drop pairs whose chosen equals rejected")
    drop_empty: bool = Field(True, description="drop pairs with an empty prompt or response")
    dedup_pairs: bool = Field(True, description="drop exact duplicate (prompt, chosen, rejected)")
    dedup_normalize: bool = Field(
        True, description="compare duplicates after strip + casefold + NFKC"
    )
    near_dedup_prompts: bool = Field(
        False,
        description="drop pairs whose prompt is a near duplicate of an earlier, different prompt",
    )
    near_threshold: float = Field(
        0.8, gt=0.0, le=1.0, description="word 5-gram Jaccard at which prompts are near duplicates"
    )
    against_column: str = Field(
        "prompt", description="the prompt column of the `against` eval sets (text or messages)"
    )
    leakage_near_threshold: float | None = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="near-duplicate Jaccard counted as leakage into `against` (null: exact and "
        "13-gram overlap only)",
    )
    rebalance_length: bool = Field(
        False,
        description="downsample so chosen is longer in as many pairs as it is shorter (seeded)",
    )
    length_unit: Literal["chars", "words"] = Field("chars", description="how length is counted")


def require_pairs(df: pl.DataFrame, what: str) -> None:
    """Raise a DataError unless `df` has the columns prompt, chosen and rejected."""
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} needs preference pairs (prompt, chosen, rejected); the input has no "
            f"column '{missing[0]}' (columns: {', '.join(df.columns)})",
            column=missing[0],
            fix="run `preference_pairs` (or `tone_pairs`) first, or rename the columns",
        )


def _record(drops: Drops, df: pl.DataFrame, mask: pl.Series, reason: str) -> None:
    if not mask.any():
        return
    sub = df.filter(mask)
    src = sub.get_column("source_row") if "source_row" in sub.columns else None
    for i, (p, c, r) in enumerate(
        zip(
            text_view(sub, "prompt"),
            text_view(sub, "chosen"),
            text_view(sub, "rejected"),
            strict=True,
        )
    ):
        drops.add(
            reason,
            "pair",
            source_row=None if src is None else src[i],
            prompt=p,
            detail={"chosen": c, "rejected": r},
        )


def rebalance_by_length(
    df: pl.DataFrame, seed: int = 0, unit: str = "chars"
) -> tuple[pl.DataFrame, pl.Series]:
    """Downsample the majority side (chosen longer / chosen shorter) to the minority's size.

    Returns the kept rows and the boolean mask of removed rows (over the input).
    """
    d = length_diffs(df, unit)
    longer, shorter = np.flatnonzero(d > 0), np.flatnonzero(d < 0)
    big = longer if longer.size > shorter.size else shorter
    excess = abs(longer.size - shorter.size)
    removed = np.zeros(df.height, dtype=bool)
    if excess:
        rng = np.random.default_rng(seed)
        removed[rng.choice(big, size=excess, replace=False)] = True
    mask = pl.Series("removed", removed)
    return df.filter(~mask), mask


def _drop_bad_pairs(
    df: pl.DataFrame, texts: tuple[pl.Series, pl.Series, pl.Series], config: PreferenceCurateConfig,
    drops: Drops,
) -> pl.Series:  # fmt: skip
    """The keep mask after empty and identical pairs."""
    p, c, r = texts
    keep = pl.Series("keep", [True] * df.height)
    if config.drop_empty:
        empty_p = p.str.strip_chars() == ""
        _record(drops, df, empty_p, "empty_prompt")
        empty_r = ~empty_p & ((c.str.strip_chars() == "") | (r.str.strip_chars() == ""))
        _record(drops, df, empty_r, "empty_response")
        keep = keep & ~empty_p & ~empty_r
    if config.drop_identical:
        same = keep & (c.str.strip_chars() == r.str.strip_chars())
        _record(drops, df, same, "identical")
        keep = keep & ~same
    return keep


def _duplicate_pairs(
    df: pl.DataFrame, texts: tuple[pl.Series, pl.Series, pl.Series], keep: pl.Series,
    normalize: bool, drops: Drops,
) -> tuple[pl.Series, dict[str, Any]]:  # fmt: skip
    """Exact duplicate (prompt, chosen, rejected) among the kept rows, via `exact_dedup`."""
    from tamis.curate.dedup import DedupConfig, exact_dedup

    p, c, r = texts
    keys = pl.DataFrame({"prompt": p, "chosen": c, "rejected": r}).filter(keep)
    config = DedupConfig(
        columns=["prompt", "chosen", "rejected"], normalize=normalize, action="flag", max_examples=0
    )
    flagged, dedup_report, _ = exact_dedup(keys, config)
    assert isinstance(flagged, pl.DataFrame)
    dup = np.zeros(df.height, dtype=bool)
    dup[keep.arg_true().to_numpy()] = flagged.get_column("is_duplicate_issue").to_numpy()
    dup_s = pl.Series("dup", dup)
    _record(drops, df, dup_s, "duplicate_pair")
    report = {k: dedup_report[k] for k in ("duplicates", "clusters", "normalize")}
    return keep & ~dup_s, report


def _leaked(
    df: pl.DataFrame, prompts: pl.Series, keep: pl.Series, against: Mapping[str, pl.DataFrame],
    config: PreferenceCurateConfig, seed: int, drops: Drops,
) -> tuple[pl.Series, dict[str, Any]]:  # fmt: skip
    """Drop the kept pairs whose prompt leaks into an eval set."""
    col = config.against_column
    evals = {}
    for name, frame in against.items():
        if col not in frame.columns:
            raise DataError(
                f"the eval set '{name}' has no column '{col}'",
                column=col,
                fix=f"set `against_column` to one of: {', '.join(frame.columns)}",
            )
        evals[name] = text_view(frame, col)
    mask, report = leaked_prompts(
        prompts, evals, near_threshold=config.leakage_near_threshold, seed=seed
    )
    leaked = keep & pl.Series(mask)
    _record(drops, df, leaked, "eval_leakage")
    return keep & ~leaked, report


def curate_pairs(
    df: pl.DataFrame,
    config: PreferenceCurateConfig | None = None,
    *,
    against: Mapping[str, pl.DataFrame] | None = None,
    seed: int = 0,
    **params: Any,
) -> PairResult:
    """Clean a preference frame; the report has counts per reason and length bias before/after.

    `config` (or its fields as `params`) says what is dropped. `near_dedup_prompts` drops the
    pairs of a prompt that is a near duplicate (word 5-gram Jaccard >= `near_threshold`,
    `tamis.curate.dedup.near_dedup_text`) of an earlier, different prompt
    (`near_duplicate_prompt`). `against` (name -> eval frame) drops the pairs whose prompt leaks
    into an eval set's `against_column` (exact after normalisation, near duplicate, or a shared
    13-gram; `tamis.curate.leakage`): reason `eval_leakage`.
    """
    if config is None:
        config = load_config(PreferenceCurateConfig, params, prefix="curate_pairs")
    require_pairs(df, "preference_curate")
    unit = config.length_unit
    drops = Drops()
    texts = tuple(text_view(df, col).fill_null("") for col in ("prompt", "chosen", "rejected"))
    assert len(texts) == 3
    extra: dict[str, Any] = {
        "length_bias_before": length_bias(df, unit),
        "rebalanced": config.rebalance_length,
    }
    keep = _drop_bad_pairs(df, texts, config, drops)
    if config.dedup_pairs and keep.any():
        keep, dedup_report = _duplicate_pairs(df, texts, keep, config.dedup_normalize, drops)
    else:
        dedup_report = None
    if config.near_dedup_prompts and keep.any():
        _, near, extra["near_dedup_prompts"] = near_duplicate_prompts(
            texts[0], config.near_threshold, seed
        )
        near = keep & near
        _record(drops, df, near, "near_duplicate_prompt")
        keep = keep & ~near
    if against and keep.any():
        keep, extra["leakage"] = _leaked(df, texts[0], keep, against, config, seed, drops)
    out = df.filter(keep)
    if config.rebalance_length and out.height:
        out_bal, removed = rebalance_by_length(out, seed, unit)
        _record(drops, out, removed, "length_rebalance")
        out = out_bal
    if dedup_report is not None:
        extra["dedup"] = dedup_report
    report = build_report("curate", df.height, out, drops, extra=extra)
    report["length_bias"] = length_bias(out, unit)
    if out.height == 0:
        raise nothing_left("curate", report)
    return PairResult(out, report, drops.frame())
