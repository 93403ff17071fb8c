"""A starter Great Expectations suite that describes a frame as it is now (`validate` mode
suggest, `tamis validate suggest`): the user edits it into what the data should be.

    suite = suggest_suite(df, name="adult", max_set_size=20)
    write_suite(suite, "adult_suite.json")
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.validate import json_safe


def suggest_suite(
    df: pl.DataFrame, *, name: str = "starter", max_set_size: int = 20
) -> dict[str, Any]:
    """A starter GX suite (dict in GX's JSON format) describing `df` as it is now.

    Schema (ordered column list), non-empty table, per column: null rate (`not_be_null`, with
    `mostly` when nulls occur), numeric ranges, value sets for columns with at most
    `max_set_size` distinct values, string length ranges otherwise. Edit it: it encodes today's
    data, not what the data should be.
    """
    exps: list[dict[str, Any]] = [
        {
            "type": "expect_table_columns_to_match_ordered_list",
            "kwargs": {"column_list": list(df.columns)},
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]
    n = df.height
    for col in df.columns:
        s = df.get_column(col)
        dtype = s.dtype
        nulls = s.null_count() + (int(s.is_nan().sum()) if dtype.is_float() else 0)
        exps.append({"type": "expect_column_to_exist", "kwargs": {"column": col}})
        if nulls == 0:
            exps.append({"type": "expect_column_values_to_not_be_null", "kwargs": {"column": col}})
        elif nulls < n:
            mostly = math.floor((1 - nulls / n) * 100 - 1) / 100
            if mostly > 0:
                exps.append(
                    {
                        "type": "expect_column_values_to_not_be_null",
                        "kwargs": {"column": col, "mostly": mostly},
                    }
                )
        if dtype.is_numeric() and not isinstance(dtype, pl.Boolean):
            vals = s.drop_nulls()
            if dtype.is_float():
                vals = vals.filter(vals.is_finite())
            if len(vals):
                lo, hi = vals.min(), vals.max()
                exps.append(
                    {
                        "type": "expect_column_values_to_be_between",
                        "kwargs": {
                            "column": col,
                            "min_value": json_safe(lo),
                            "max_value": json_safe(hi),
                        },
                    }
                )
            exps.append(
                {
                    "type": "expect_column_values_to_be_of_type",
                    "kwargs": {"column": col, "type_": str(s.to_pandas().dtype)},
                }
            )
        elif dtype in (pl.String, pl.Categorical, pl.Boolean) or isinstance(dtype, pl.Enum):
            distinct = s.drop_nulls().unique()
            if len(distinct) <= max_set_size:
                exps.append(
                    {
                        "type": "expect_column_values_to_be_in_set",
                        "kwargs": {
                            "column": col,
                            "value_set": sorted(json_safe(distinct.to_list()), key=str),
                        },
                    }
                )
            elif dtype == pl.String:
                lens = s.drop_nulls().str.len_chars().to_numpy()
                exps.append(
                    {
                        "type": "expect_column_value_lengths_to_be_between",
                        "kwargs": {
                            "column": col,
                            "min_value": int(lens.min()) if len(lens) else 0,
                            "max_value": int(lens.max()) if len(lens) else 0,
                        },
                    }
                )
    return {
        "name": name,
        "expectations": exps,
        "meta": {
            "generated_by": "tamis validate (mode: suggest)",
            "rows": n,
            "note": "a starter suite describing the data as it is; edit it",
        },
    }


def write_suite(suite: Mapping[str, Any], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(suite, indent=2, default=str) + "\n", encoding="utf-8")
    return p
