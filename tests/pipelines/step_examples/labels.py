"""Examples of the label group: label_issues, datalab, consensus, inject_label_noise, validate."""

from __future__ import annotations

import polars as pl
from _example import Example, tabular_frame


def _table() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    return {"input": tabular_frame(120)}


def _noisy_table() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    """Every 9th label flipped and marked, so label_issues reports detection precision/recall."""
    df = tabular_frame(120).with_row_index("id").with_columns(pl.col("id").cast(pl.Int64))
    flip = pl.col("id") % 9 == 4
    other = pl.when(pl.col("income") == ">50K").then(pl.lit("<=50K")).otherwise(pl.lit(">50K"))
    return {
        "input": df.with_columns(
            pl.when(flip).then(other).otherwise(pl.col("income")).alias("income"),
            flip.alias("is_injected_noise"),
        )
    }


def _annotations() -> dict[str, pl.DataFrame | list[pl.DataFrame]]:
    """30 items, 3 annotators each (w2 disagrees often), an item-level column and gold labels."""
    rows = []
    for i in range(30):
        truth = "pos" if i % 3 else "neg"
        for a in ("w0", "w1", "w2"):
            wrong = (a == "w2" and i % 4 == 0) or (a == "w1" and i % 10 == 7)
            label = ("neg" if truth == "pos" else "pos") if wrong else truth
            rows.append(
                {
                    "item": i,
                    "annotator": a,
                    "label": label,
                    "length": float(i % 7),
                    "gold": truth if i % 5 == 0 else None,
                }
            )
    return {"input": pl.DataFrame(rows)}


EXAMPLES = {
    "label_issues": Example(
        _noisy_table,
        {"label": "income", "features": ["age", "hours", "education", "sex"], "folds": 3},
        needs=("cleanlab", "sklearn"),
    ),
    "datalab": Example(_table, {"label": "income", "folds": 3}, needs=("cleanlab", "sklearn")),
    "consensus": Example(
        _annotations,
        {"gold": "gold", "min_agreement": 0.7, "low_agreement": "adjudicate", "window": 5},
        needs=("cleanlab",),
    ),
    "inject_label_noise": Example(
        _table, {"label": "income", "rate": 0.2, "truth_column": "is_injected_noise"}, seed=3
    ),
    "validate": Example(
        _table,
        {
            "expectations": [
                {"expect_column_values_to_not_be_null": {"column": "age"}},
                {
                    "type": "expect_column_values_to_be_between",
                    "kwargs": {"column": "hours", "min_value": 0, "max_value": 100},
                },
            ],
            "on_failure": "warn",
        },
        needs=("great_expectations",),
    ),
}
