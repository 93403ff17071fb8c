"""The preference stats report: pairs in/out per reason, length bias, turns per prompt, agreement.

Length bias is the classic reward-hacking shortcut: if the chosen response is usually the longer
one, a reward model can score well by counting tokens. Three views of it:

- `chosen_longer_share` (with a Wilson 95% CI): the share of pairs whose chosen response is longer;
  0.5 means length says nothing.
- `length_only_accuracy`: the pairwise accuracy of the rule "the longer response wins" (equal lengths
  count one half) -- the score a reward model gets from length alone.
- `length_corr`: the point-biserial correlation between the length difference of a pair's two
  responses and which one is preferred, with each pair counted in both orders (a and b, then b and a).
  It equals mean(d) / sqrt(mean(d^2)) where d = len(chosen) - len(rejected); in [-1, 1], 0 = no bias.
  When the pairs carry a `score_gap`, `length_gap_spearman` also relates d to the size of the
  preference.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from tamis.curate.preferences.common import Drops, n_user_turns, text_view
from tamis.stats import wilson


def length_diffs(pairs: pl.DataFrame, unit: str = "chars") -> np.ndarray:
    """len(chosen) - len(rejected) per pair, in characters or whitespace-separated words."""
    c, r = text_view(pairs, "chosen"), text_view(pairs, "rejected")
    if unit == "words":
        lc = c.str.strip_chars().str.split(" ").list.len()
        lr = r.str.strip_chars().str.split(" ").list.len()
    else:
        lc, lr = c.str.len_chars(), r.str.len_chars()
    return (lc.cast(pl.Int64) - lr.cast(pl.Int64)).fill_null(0).to_numpy()


def _mean(s: pl.Series) -> float:
    value = s.mean()
    return float(value) if isinstance(value, (int, float)) else 0.0


def length_bias(pairs: pl.DataFrame, unit: str = "chars") -> dict[str, Any]:
    """The length-bias diagnostic of a preference frame (see the module docstring)."""
    d = length_diffs(pairs, unit).astype(float)
    n = int(d.size)
    if n == 0:
        return {"n": 0, "unit": unit}
    longer = int((d > 0).sum())
    equal = int((d == 0).sum())
    lo, hi = wilson(longer, n)
    rms = float(np.sqrt(np.mean(d * d)))
    out: dict[str, Any] = {
        "n": n,
        "unit": unit,
        "chosen_longer_share": longer / n,
        "ci_low": lo,
        "ci_high": hi,
        "equal_length_share": equal / n,
        "length_only_accuracy": (longer + 0.5 * equal) / n,
        "mean_length_diff": float(d.mean()),
        "median_length_diff": float(np.median(d)),
        "mean_chosen_length": _mean(text_view(pairs, "chosen").str.len_chars()),
        "mean_rejected_length": _mean(text_view(pairs, "rejected").str.len_chars()),
        "length_corr": float(d.mean() / rms) if rms > 0 else 0.0,
    }
    if "score_gap" in pairs.columns and n >= 3:
        gap = pairs.get_column("score_gap").cast(pl.Float64).fill_null(0.0).to_numpy()
        if np.std(gap) > 0 and np.std(d) > 0:
            from scipy.stats import spearmanr

            out["length_gap_spearman"] = float(spearmanr(d, gap).statistic)
    biased = (lo > 0.5 or hi < 0.5) and abs(longer / n - 0.5) >= 0.1
    out["biased"] = bool(biased)
    if biased:
        side, share = ("longer", longer / n) if longer / n > 0.5 else ("shorter", (d < 0).mean())
        out["warning"] = (
            f"the chosen response is {side} in {share:.0%} of pairs: a reward model can learn "
            "length instead of quality (consider `rebalance_length: true` in preference_curate)"
        )
    return out


def turns_summary(pairs: pl.DataFrame) -> dict[str, Any]:
    turns = n_user_turns(pairs)
    if turns.len() == 0:
        return {"mean": 0.0, "max": 0, "histogram": {}}
    hist = turns.value_counts().sort(turns.name)
    return {
        "mean": float(turns.mean() or 0.0),  # type: ignore[arg-type]
        "max": int(turns.max() or 0),  # type: ignore[arg-type]
        "histogram": {str(k): int(v) for k, v in hist.iter_rows()},
    }


def build_report(
    kind: str,
    rows_in: int,
    pairs: pl.DataFrame,
    drops: Drops,
    *,
    pairs_in: int | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The common report of every builder and of `curate_pairs`."""
    prompts = text_view(pairs, "prompt").n_unique() if pairs.height else 0
    report: dict[str, Any] = {
        "from": kind,
        "rows_in": rows_in,
        "pairs_in": rows_in if pairs_in is None else pairs_in,
        "pairs_out": pairs.height,
        "prompts_out": prompts,
        "dropped_rows": drops.counts("row"),
        "dropped_pairs": drops.counts("pair"),
        "dropped_prompts": drops.counts("prompt"),
        "length_bias": length_bias(pairs),
        "turns_per_prompt": turns_summary(pairs),
    }
    if "tie" in pairs.columns:
        report["ties_kept"] = int(pairs.get_column("tie").sum())
    if "synthetic" in pairs.columns and pairs.height:
        report["synthetic"] = bool(pairs.get_column("synthetic").any())
    report.update(extra or {})
    return report
