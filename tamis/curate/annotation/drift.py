"""Gold drift: a rater's accuracy on gold items per time window, against their other windows."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from tamis.curate.annotation.columns import require_columns
from tamis.errors import DataError

if TYPE_CHECKING:
    from tamis.curate.annotation.aggregate import AggregateLabelsConfig


def gold_drift(df: pl.DataFrame, config: AggregateLabelsConfig) -> pl.DataFrame:
    """Per rater and time window: accuracy on gold items, against the same rater's other windows.

    A window is flagged as drift when its accuracy is lower than on the rater's other gold items
    by a one-sided Fisher exact test with p below `drift_alpha / (number of the rater's windows)`
    (Bonferroni), and it has at least `min_window_items` gold items. Comparing with the rest,
    not with the first window, keeps one lucky early window from making every later one look
    like drift. Windows: `time` a date/datetime truncated to `window` (e.g. '1w'), a number
    bucketed by integer `window`, or without `time` consecutive blocks of `window` gold items in
    the data's order."""
    from scipy.stats import fisher_exact

    annotator, label, gold, time = config.annotator, config.label, config.gold, config.time
    window, min_window_items, alpha = config.window, config.min_window_items, config.drift_alpha
    if gold is None:
        raise DataError("gold drift needs a gold-label column", field="gold", fix="set `gold`")
    require_columns(df, {"annotator": annotator, "label": label, "gold": gold, "time": time})
    g = df.filter(pl.col(gold).is_not_null() & pl.col(label).is_not_null())
    if time is None:
        if not isinstance(window, int):
            raise DataError(
                "without `time`, window is a number of gold items", field="window", fix="e.g. 50"
            )
        g = g.with_columns(
            (pl.int_range(pl.len()).over(annotator) // window).cast(pl.String).alias("_w")
        )
    elif g.schema[time].is_temporal():
        g = g.with_columns(pl.col(time).dt.truncate(str(window)).cast(pl.String).alias("_w"))
    elif g.schema[time].is_numeric() and isinstance(window, int):
        g = g.with_columns((pl.col(time).cast(pl.Int64) // window).cast(pl.String).alias("_w"))
    else:
        raise DataError(
            f"time column '{time}' must be a date/datetime (window like '1w') or a number "
            "(an integer window)",
            column=time,
            field="window",
        )
    counts = (
        g.with_columns((pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String)).alias("_ok"))
        .group_by(pl.col(annotator).cast(pl.String).alias("annotator"), "_w")
        .agg(pl.len().alias("n"), pl.col("_ok").sum().cast(pl.Int64).alias("correct"))
        .sort("annotator", "_w")
    )
    rows = []
    for (ann,), part in counts.group_by("annotator", maintain_order=True):
        total_n, total_k = int(part["n"].sum()), int(part["correct"].sum())
        tested = part.filter(pl.col("n") >= min_window_items).height
        for w, n, k in part.select("_w", "n", "correct").iter_rows():
            rest_n, rest_k = total_n - n, total_k - k
            p = float("nan")
            if n >= min_window_items and rest_n > 0:
                p = float(
                    fisher_exact([[k, n - k], [rest_k, rest_n - rest_k]], alternative="less")[1]
                )
            rows.append(
                {
                    "annotator": ann,
                    "window": w,
                    "n": n,
                    "accuracy": k / n,
                    "rest_n": rest_n,
                    "rest_accuracy": rest_k / rest_n if rest_n else float("nan"),
                    "p_value": p,
                    "drift": bool(p == p and tested and p < alpha / tested),
                }
            )
    schema = {
        "annotator": pl.String,
        "window": pl.String,
        "n": pl.Int64,
        "accuracy": pl.Float64,
        "rest_n": pl.Int64,
        "rest_accuracy": pl.Float64,
        "p_value": pl.Float64,
        "drift": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)
