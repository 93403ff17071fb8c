"""Gold-standard checks of annotators: accuracy on gold items, and its drift over time.

With a `gold` column (the known answer, null where none), each annotator's accuracy on gold items
is computed per time window (`time` a date/datetime column with `window` like `1w`, an integer
column bucketed by `window` units, or without `time` consecutive blocks of `window` of that
annotator's gold rows). A window is flagged as drift when its accuracy falls more than
`drift_threshold` below the annotator's first window with at least `min_window_items` gold items
AND the upper end of its 95% Wilson interval is still below that baseline (so small windows do not
raise false alarms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import polars as pl

from tamis.errors import DataError
from tamis.stats import wilson

if TYPE_CHECKING:
    from tamis.curate.consensus import ConsensusConfig

NAN_INTERVAL = (float("nan"), float("nan"))


def gold_accuracy_drift(df: pl.DataFrame, config: ConsensusConfig) -> pl.DataFrame:
    """Per annotator and time window: gold accuracy with a 95% Wilson CI and a drift flag (the
    config's `annotator`, `label`, `gold` (set), `time`, `window`, `drift_threshold` and
    `min_window_items`)."""
    annotator, label, gold, time = config.annotator, config.label, str(config.gold), config.time
    window, drift_threshold = config.window, config.drift_threshold
    min_window_items = config.min_window_items
    for col in (gold, *([time] if time else [])):
        if col not in df.columns:
            raise DataError(
                f"column '{col}' is not in the data",
                column=col,
                fix="set `gold`/`time` to existing columns or leave them out",
            )
    g = df.filter(pl.col(gold).is_not_null())
    correct = (pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String)).alias("_ok")
    if time is None:
        if not isinstance(window, int):
            raise DataError(
                "without `time`, window must be a number of gold items",
                field="window",
                fix="e.g. window: 50",
            )
        g = g.with_columns((pl.int_range(pl.len()).over(annotator) // window).alias("window"))
    elif g.schema[time].is_temporal():
        g = g.with_columns(pl.col(time).dt.truncate(str(window)).cast(pl.String).alias("window"))
    elif g.schema[time].is_numeric():
        if not isinstance(window, int):
            raise DataError(
                "a numeric time column needs an integer window",
                field="window",
                fix="e.g. window: 100",
            )
        g = g.with_columns((pl.col(time).cast(pl.Int64) // window).alias("window"))
    else:
        raise DataError(
            f"time column '{time}' must be a date/datetime or a number",
            column=time,
            fix="parse it first (e.g. a normalize step)",
        )
    t = (
        g.with_columns(correct)
        .group_by([annotator, "window"])
        .agg(pl.len().alias("n"), pl.col("_ok").sum().alias("correct"))
        .sort([annotator, "window"])
        .with_columns(pl.col(annotator).cast(pl.String))
    )
    rows = []
    for ann, part in t.group_by(annotator, maintain_order=True):
        baseline = None
        for r in part.iter_rows(named=True):
            n, k = int(r["n"]), int(r["correct"])
            acc = k / n if n else float("nan")
            lo, hi = wilson(k, n, empty=NAN_INTERVAL)
            if baseline is None and n >= min_window_items:
                baseline = acc
            drift = bool(
                baseline is not None
                and n >= min_window_items
                and acc < baseline - drift_threshold
                and hi < baseline
            )
            rows.append(
                {
                    "annotator": str(ann[0]),
                    "window": str(r["window"]),
                    "n": n,
                    "accuracy": acc,
                    "ci_low": lo,
                    "ci_high": hi,
                    "baseline_accuracy": baseline,
                    "drift": drift,
                }
            )
    schema = {
        "annotator": pl.String,
        "window": pl.String,
        "n": pl.Int64,
        "accuracy": pl.Float64,
        "ci_low": pl.Float64,
        "ci_high": pl.Float64,
        "baseline_accuracy": pl.Float64,
        "drift": pl.Boolean,
    }
    return pl.DataFrame(rows, schema=schema)


def annotator_gold_accuracy(
    data: pl.DataFrame, *, annotator: str, label: str, gold: str
) -> pl.DataFrame:
    """Per annotator (as text, column `annotator`): gold_accuracy and gold_items."""
    return (
        data.filter(pl.col(gold).is_not_null())
        .group_by(annotator)
        .agg(
            (pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String))
            .mean()
            .alias("gold_accuracy"),
            pl.len().alias("gold_items"),
        )
        .with_columns(pl.col(annotator).cast(pl.String).alias("annotator"))
        .select("annotator", "gold_accuracy", "gold_items")
    )


def consensus_gold_accuracy(out: pl.DataFrame, *, label: str, gold: str) -> dict[str, Any] | None:
    """Accuracy of the consensus labels on the items with a gold label (Wilson 95% CI)."""
    gold_items = out.filter(pl.col(gold).is_not_null())
    if not gold_items.height:
        return None
    hits = int((gold_items[label].cast(pl.String) == gold_items[gold].cast(pl.String)).sum())
    lo, hi = wilson(hits, gold_items.height, empty=NAN_INTERVAL)
    return {
        "accuracy": hits / gold_items.height,
        "ci_low": lo,
        "ci_high": hi,
        "n": gold_items.height,
    }
