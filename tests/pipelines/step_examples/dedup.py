"""Examples of the dedup group: dedup (keyed), near_dedup and leakage, with duplicates planted."""

from __future__ import annotations

import polars as pl
from _example import Example, text_frame


def _with_copies() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    """text_frame has exact copies (up to case and padding) and near copies ("extra i")."""
    return {"input": text_frame(40)}


def _train_and_eval() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    df = text_frame(40)
    return {"input": df, "against": [df.slice(30, 10), df.head(3)]}


EXAMPLES = {
    "dedup": Example(
        _with_copies,
        {"columns": ["text", "label"], "normalize": True, "keep": "last", "action": "flag"},
    ),
    "near_dedup": Example(_with_copies, {"column": "text", "ngram": 3, "threshold": 0.7}),
    "leakage": Example(
        _train_and_eval,
        {"columns": ["text"], "normalize": True, "text": "text", "ngram": 5, "action": "flag"},
    ),
}
