"""Examples of the core step types: normalize and filter (map), sample and split (global)."""

from __future__ import annotations

import polars as pl
from _example import Example, tabular_frame


def _raw() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    """A raw CSV-like table: padded names and values, '?'/'NA' for missing, numbers as text
    (one column with a float only late, so a batch of only '1's still casts to Float64)."""
    n = 40
    return {
        "input": pl.DataFrame(
            {
                " age": [f" {20 + i}" if i % 9 != 4 else " ?" for i in range(n)],
                "score ": [" 1" if i < 30 else f" {i}.5" for i in range(n)],
                "workclass": [" Private" if i % 3 else "NA" for i in range(n)],
                "when": [f"2024-01-{1 + i % 28:02d}" for i in range(n)],
                "code": [f" {i % 4}" for i in range(n)],
                "note": ["x"] * n,
            }
        )
    }


def _table() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    return {"input": tabular_frame(120)}


EXAMPLES = {
    "normalize": Example(
        _raw,
        {
            "null_values": ["?", "NA"],
            "cast": {"when": "date", "code": "str"},
            "format": "%Y-%m-%d",
            "rename": {"workclass": "work"},
            "drop": ["note"],
        },
    ),
    "filter": Example(_table, {"where": "age >= 30 AND education <> 'HS'"}),
    "sample": Example(_table, {"n": 50, "stratify": "sex"}, seed=3),
    # split's parts are named by the user; `data` names the part the contract test checks
    "split": Example(_table, {"fractions": {"data": 0.7, "rest": 0.3}, "stratify": "income"}),
}
