"""Curation of preference pairs: identical/empty pairs, exact duplicates, length bias, prompt splits.

Works on the output of any builder, in the standard (text) or conversational (messages) format.

- `curate_pairs` drops pairs whose chosen and rejected are identical (`identical`, compared after
  stripping whitespace), that have an empty response (`empty_response`) or prompt (`empty_prompt`),
  and exact duplicate pairs (`duplicate_pair`, via `tamis.curate.dedup.exact_dedup` on the
  prompt/chosen/rejected text), then optionally rebalances length (see below).
- `rebalance_by_length` removes (seeded) pairs of the majority side among "chosen is longer" and
  "chosen is shorter" until both sides have the same count, so length stops predicting the label
  (`length_rebalance`); pairs of equal length are kept.
- `split_by_prompt` assigns whole prompts to parts, so no prompt lands in two parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.preferences.common import (
    Drops,
    PairResult,
    nothing_left,
    text_view,
)
from tamis.curate.preferences.overlap import leaked_prompts, near_duplicate_prompts
from tamis.curate.preferences.stats import build_report, length_bias, length_diffs
from tamis.errors import StepError


def _require_pairs(df: pl.DataFrame, what: str) -> None:
    missing = [c for c in ("prompt", "chosen", "rejected") if c not in df.columns]
    if missing:
        raise StepError(
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


def curate_pairs(
    df: pl.DataFrame,
    *,
    drop_identical: bool = True,
    drop_empty: bool = True,
    dedup_pairs: bool = True,
    dedup_normalize: bool = True,
    near_dedup_prompts: bool = False,
    near_threshold: float = 0.8,
    against: Mapping[str, pl.DataFrame] | None = None,
    against_column: str = "prompt",
    leakage_near_threshold: float | None = 0.8,
    rebalance_length: bool = False,
    length_unit: str = "chars",
    seed: int = 0,
) -> PairResult:
    """Clean a preference frame; the report has counts per reason and length bias before/after.

    `near_dedup_prompts` drops the pairs of a prompt that is a near duplicate (word 5-gram Jaccard
    >= `near_threshold`, `tamis.curate.near_dedup`) of an earlier, different prompt
    (`near_duplicate_prompt`). `against` (name -> eval frame) drops the pairs whose prompt leaks
    into an eval set's `against_column` (exact after normalisation, near duplicate, or a shared
    13-gram; `tamis.curate.leakage`): reason `eval_leakage`.
    """
    _require_pairs(df, "preference_curate")
    if length_unit not in ("chars", "words"):
        raise StepError("length_unit must be chars or words", field="length_unit", fix="chars")
    drops = Drops()
    rows_in = df.height
    before = length_bias(df, length_unit)
    p, c, r = (text_view(df, col).fill_null("") for col in ("prompt", "chosen", "rejected"))
    keep = pl.Series("keep", [True] * df.height)
    if drop_empty:
        empty_p = p.str.strip_chars() == ""
        _record(drops, df, empty_p, "empty_prompt")
        empty_r = ~empty_p & ((c.str.strip_chars() == "") | (r.str.strip_chars() == ""))
        _record(drops, df, empty_r, "empty_response")
        keep = keep & ~empty_p & ~empty_r
    if drop_identical:
        same = keep & (c.str.strip_chars() == r.str.strip_chars())
        _record(drops, df, same, "identical")
        keep = keep & ~same
    dedup_report: dict[str, Any] | None = None
    if dedup_pairs and keep.any():
        from tamis.curate.dedup import exact_dedup

        keys = pl.DataFrame({"prompt": p, "chosen": c, "rejected": r}).filter(keep)
        flagged, dedup_report, _ = exact_dedup(
            keys,
            ["prompt", "chosen", "rejected"],
            normalize=dedup_normalize,
            action="flag",
            max_examples=0,
            step="preference_curate",
        )
        assert isinstance(flagged, pl.DataFrame)
        dup = np.zeros(df.height, dtype=bool)
        dup[keep.arg_true().to_numpy()] = flagged.get_column("is_duplicate_issue").to_numpy()
        dup_s = pl.Series("dup", dup)
        _record(drops, df, dup_s, "duplicate_pair")
        keep = keep & ~dup_s
    extra: dict[str, Any] = {"length_bias_before": before, "rebalanced": rebalance_length}
    if near_dedup_prompts and keep.any():
        _, near, extra["near_dedup_prompts"] = near_duplicate_prompts(p, near_threshold, seed)
        near = keep & near
        _record(drops, df, near, "near_duplicate_prompt")
        keep = keep & ~near
    if against and keep.any():
        evals = {}
        for name, frame in against.items():
            if against_column not in frame.columns:
                raise StepError(
                    f"the eval set '{name}' has no column '{against_column}'",
                    column=against_column,
                    fix=f"set `against_column` to one of: {', '.join(frame.columns)}",
                )
            evals[name] = text_view(frame, against_column)
        mask, extra["leakage"] = leaked_prompts(
            p, evals, near_threshold=leakage_near_threshold, seed=seed
        )
        leaked = keep & pl.Series(mask)
        _record(drops, df, leaked, "eval_leakage")
        keep = keep & ~leaked
    out = df.filter(keep)
    if rebalance_length and out.height:
        out_bal, removed = rebalance_by_length(out, seed, length_unit)
        _record(drops, out, removed, "length_rebalance")
        out = out_bal
    if dedup_report is not None:
        extra["dedup"] = {k: dedup_report[k] for k in ("duplicates", "clusters", "normalize")}
    report = build_report("curate", rows_in, out, drops, extra=extra)
    report["length_bias"] = length_bias(out, length_unit)
    if out.height == 0:
        raise nothing_left("curate", report)
    return PairResult(out, report, drops.frame())


def _unit_hash(keys: pl.Series, seed: int) -> np.ndarray:
    """A stable number in [0, 1) per key (blake2b of seed + key): same key, same number, anywhere."""
    salt = str(seed).encode()[:64]
    values = keys.fill_null("").to_list()
    unit: dict[str, float] = {}
    for k in set(values):
        h = hashlib.blake2b(k.encode(), digest_size=8, key=salt).digest()
        unit[k] = int.from_bytes(h, "big") / 2.0**64
    return np.array([unit[k] for k in values], dtype=np.float64)


def split_by_prompt(
    df: pl.DataFrame,
    fractions: dict[str, float],
    seed: int = 0,
    groups: pl.Series | None = None,
    near_threshold: float | None = None,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Split pairs into named parts by prompt: every pair of a prompt lands in the same part.

    Each distinct prompt (its full text, every turn) is placed by a seeded hash of its text, so the
    assignment of a prompt does not depend on the other rows (adding data never moves a prompt to
    another part). Pass `groups` (one key per row) to keep other groups together instead, e.g.
    near-duplicate clusters; `near_threshold` does that for near-duplicate prompts (word 5-gram
    Jaccard >= the threshold, via `tamis.curate.near_dedup`), so a reworded prompt cannot sit in
    train while its twin is in test. Part sizes follow `fractions` in expectation, over prompts.
    """
    _require_pairs(df, "prompt_split")
    names = list(fractions)
    total = sum(fractions.values())
    if len(names) < 2 or any(f <= 0 for f in fractions.values()) or abs(total - 1) > 1e-6:
        raise StepError(
            f"fractions must be >= 2 positive shares summing to 1, got {fractions}",
            field="fractions",
            fix="e.g. fractions: {train: 0.9, test: 0.1}",
        )
    if df.height == 0:
        raise StepError("the input is empty: nothing to split", fix="check the previous step")
    grouped_by = "prompt" if groups is None else "groups"
    if groups is None and near_threshold is not None:
        groups, _, _ = near_duplicate_prompts(text_view(df, "prompt"), near_threshold, seed)
        grouped_by = f"near-duplicate prompts (jaccard >= {near_threshold})"
    key = groups if groups is not None else text_view(df, "prompt")
    u = _unit_hash(key.cast(pl.String), seed)
    edges = np.cumsum([fractions[n] for n in names])
    part = np.minimum(np.searchsorted(edges, u, side="right"), len(names) - 1)
    prompt_text = text_view(df, "prompt")
    frames: dict[str, pl.DataFrame] = {}
    sizes: dict[str, dict[str, int]] = {}
    seen: list[set[str]] = []
    for i, name in enumerate(names):
        mask = pl.Series(part == i)
        frames[name] = df.filter(mask)
        prompts = set(prompt_text.filter(mask).to_list())
        seen.append(prompts)
        sizes[name] = {"pairs": frames[name].height, "prompts": len(prompts)}
    shared = sum(len(a & b) for i, a in enumerate(seen) for b in seen[i + 1 :])
    report = {
        "rows_in": df.height,
        "prompts": prompt_text.n_unique(),
        "parts": sizes,
        "fractions": fractions,
        "prompts_in_two_parts": shared,
        "grouped_by": grouped_by,
    }
    return frames, report
