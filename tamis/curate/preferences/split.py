"""Split preference (or SFT/prompt) data by prompt, so no prompt lands in two parts.

Each distinct prompt (all its turns, text or messages) is placed by a seeded hash of its text, so
every pair of a prompt goes to the same part and adding rows never moves a prompt.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config, load_config
from tamis.curate.preferences.common import text_view
from tamis.curate.preferences.curate import require_pairs
from tamis.curate.preferences.overlap import near_duplicate_prompts
from tamis.errors import DataError


class PromptSplitConfig(Config):
    """The parts of `prompt_split` and how near-duplicate prompts are kept together."""

    fractions: dict[str, float] = Field(
        default_factory=lambda: {"train": 0.9, "test": 0.1},
        description="part name -> share of prompts (sum to 1); each part is an output",
    )
    near_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="also keep near-duplicate prompts (word 5-gram Jaccard >= this) in one part",
    )


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
    config: PromptSplitConfig | None = None,
    *,
    seed: int = 0,
    groups: pl.Series | None = None,
    **params: Any,
) -> tuple[dict[str, pl.DataFrame], dict[str, Any]]:
    """Split pairs into named parts by prompt: every pair of a prompt lands in the same part.

    Each distinct prompt (its full text, every turn) is placed by a seeded hash of its text, so the
    assignment of a prompt does not depend on the other rows (adding data never moves a prompt to
    another part). Pass `groups` (one key per row) to keep other groups together instead, e.g.
    near-duplicate clusters; `near_threshold` does that for near-duplicate prompts (word 5-gram
    Jaccard >= the threshold, via `tamis.curate.dedup.near_dedup_text`), so a reworded prompt cannot
    sit in train while its twin is in test. Part sizes follow `fractions` in expectation, over
    prompts. `config` may be given as its fields (`params`).
    """
    if config is None:
        config = load_config(PromptSplitConfig, params, prefix="split_by_prompt")
    fractions, near_threshold = config.fractions, config.near_threshold
    require_pairs(df, "prompt_split")
    names = list(fractions)
    total = sum(fractions.values())
    if len(names) < 2 or any(f <= 0 for f in fractions.values()) or abs(total - 1) > 1e-6:
        raise DataError(
            f"fractions must be >= 2 positive shares summing to 1, got {fractions}",
            field="fractions",
            fix="e.g. fractions: {train: 0.9, test: 0.1}",
        )
    if df.height == 0:
        raise DataError("the input is empty: nothing to split", fix="check the previous step")
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
