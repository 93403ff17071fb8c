"""Multi-annotator consensus (CROWDLAB via `cleanlab.multiannotator`) and gold-standard drift.

    out, report = consensus(df, item="item", annotator="worker", label="label")
    # one row per item: label (consensus), consensus_quality_score, annotator_agreement,
    # num_annotations, is_low_agreement_issue, low_agreement_score (= agreement; low = bad)

CROWDLAB needs a classifier's predicted probabilities per item. With `features`/`text` (item-level
columns), they are out-of-fold probabilities of the default model (see `label_features`) trained on
the majority-vote labels, as cleanlab recommends. Without features they are the smoothed vote
shares of each item (`(votes + 1/K) / (m + 1)`), so CROWDLAB then weighs annotators by how often
they agree with the others - a weaker signal, said in `report["pred_probs"]`.

Annotations with a null (or NaN) label are dropped (counted in `report["null_labels_dropped"]`,
with a warning), as are annotations without an item or annotator.

Low-agreement items (`annotator_agreement < min_agreement`, or fewer than `min_annotations`
labels) are flagged; `low_agreement: drop` removes them and `adjudicate` removes them and lists
them (with every annotator's label) in the `adjudication` table for a person to decide.

Gold drift: with a `gold` column, each annotator's accuracy on gold items is computed per time
window (`time` a date/datetime column with `window` like `1w`, an integer column bucketed by
`window` units, or without `time` consecutive blocks of `window` of that annotator's gold rows);
a window is flagged as drift when its accuracy falls more than `drift_threshold` below the
annotator's first window with at least `min_window_items` gold items AND the upper end of its 95%
Wilson interval is still below that baseline (so small windows do not raise false alarms).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import polars as pl

from tamis.curate.agreement import agreement_summary, check_annotations, vote_counts
from tamis.curate.label_features import null_label_mask
from tamis.errors import StepError
from tamis.stats import wilson

LowAgreement = Literal["flag", "drop", "adjudicate"]


_NO_CI = (float("nan"), float("nan"))


def gold_accuracy_drift(
    df: pl.DataFrame,
    *,
    annotator: str,
    label: str,
    gold: str,
    time: str | None = None,
    window: str | int = 50,
    drift_threshold: float = 0.1,
    min_window_items: int = 10,
) -> pl.DataFrame:
    """Per annotator and time window: gold accuracy with a 95% Wilson CI and a drift flag."""
    for col in (gold, *([time] if time else [])):
        if col not in df.columns:
            raise StepError(
                f"column '{col}' is not in the data",
                column=col,
                fix="set `gold`/`time` to existing columns or leave them out",
            )
    g = df.filter(pl.col(gold).is_not_null())
    correct = (pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String)).alias("_ok")
    if time is None:
        if not isinstance(window, int):
            raise StepError(
                "without `time`, window must be a number of gold items",
                field="window",
                fix="e.g. window: 50",
            )
        g = g.with_columns((pl.int_range(pl.len()).over(annotator) // window).alias("window"))
    elif g.schema[time].is_temporal():
        g = g.with_columns(pl.col(time).dt.truncate(str(window)).cast(pl.String).alias("window"))
    elif g.schema[time].is_numeric():
        if not isinstance(window, int):
            raise StepError(
                "a numeric time column needs an integer window",
                field="window",
                fix="e.g. window: 100",
            )
        g = g.with_columns((pl.col(time).cast(pl.Int64) // window).alias("window"))
    else:
        raise StepError(
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
            lo, hi = wilson(k, n, empty=_NO_CI)
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


def _item_pred_probs(
    items: pl.DataFrame,
    majority: np.ndarray,
    counts: np.ndarray,
    *,
    features: list[str] | None,
    text: str | None,
    folds: int,
    seed: int,
    label: str,
) -> tuple[np.ndarray, str]:
    k = counts.shape[1]
    if features is None and text is None:
        m = counts.sum(axis=1, keepdims=True)
        return (counts + 1.0 / k) / (m + 1.0), "smoothed vote shares (no features given)"
    from tamis.curate.label_features import (
        choose_folds,
        feature_frame,
        make_model,
        out_of_fold_pred_probs,
        resolve_features,
    )

    spec = resolve_features(items, label=None, features=features, text=text, where="consensus")
    present = np.unique(majority)
    if len(present) < k:
        raise StepError(
            "some class is never the majority label; cannot fit the item model",
            step="consensus",
            fix="leave features/text out to use vote shares",
        )
    counts_by_class = {str(c): int((majority == c).sum()) for c in range(k)}
    nf, _ = choose_folds(counts_by_class, folds, where="consensus", label=label)
    probs = out_of_fold_pred_probs(
        feature_frame(items, spec),
        majority,
        make_model(spec, "auto", seed=seed),
        folds=nf,
        seed=seed,
    )
    return probs, f"out-of-fold model on {', '.join(spec.columns)} ({nf} folds)"


def consensus(
    df: pl.DataFrame,
    *,
    item: str,
    annotator: str,
    label: str,
    gold: str | None = None,
    time: str | None = None,
    method: Literal["crowdlab", "majority"] = "crowdlab",
    features: list[str] | None = None,
    text: str | None = None,
    min_agreement: float = 0.5,
    min_annotations: int = 1,
    low_agreement: LowAgreement = "flag",
    window: str | int = 50,
    drift_threshold: float = 0.1,
    min_window_items: int = 10,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> tuple[pl.DataFrame, dict[str, Any]]:
    """A long annotation table -> one labelled row per item, with agreement columns and a report.

    Item-level columns (any column other than annotator/label/gold/time) are carried over with
    their first value per item. `report["tables"]` holds `annotators`, `pairwise_kappa`,
    `adjudication` and (with `gold`) `gold_drift`.
    """
    from tamis.curate.label_features import import_cleanlab

    import_cleanlab()  # without its process-wide warnings.filterwarnings("ignore")
    import cleanlab.multiannotator as ma

    where = "consensus"
    say = progress or (lambda _m: None)
    if low_agreement not in ("flag", "drop", "adjudicate"):
        raise StepError(
            f"unknown low_agreement {low_agreement!r}",
            step=where,
            field="low_agreement",
            fix="use flag, drop or adjudicate",
        )
    n_null = 0
    if label in df.columns:
        missing = null_label_mask(df.get_column(label))
        n_null = int(missing.sum())
        if n_null:
            df = df.filter(pl.Series(~missing))
    data, dupes = check_annotations(df, item=item, annotator=annotator, label=label, where=where)
    warns: list[str] = []
    if n_null:
        warns.append(
            f"{n_null:,} of {df.height + n_null:,} annotation(s) have a null label in '{label}': dropped"
            f" before consensus (null_labels_dropped: {n_null})"
        )
        warnings.warn(warns[-1], stacklevel=2)
    say("agreement statistics")
    summary, pairs = agreement_summary(data, item=item, annotator=annotator, label=label, seed=seed)
    counts, classes = vote_counts(data, item=item, label=label)
    k = len(classes)
    if k < 2:
        raise StepError(
            "every annotation has the same label; nothing to reach consensus on",
            step=where,
            column=label,
            fix="check the label column",
        )
    items = data.get_column(item).unique(maintain_order=True)
    annotators = data.get_column(annotator).unique(maintain_order=True)
    item_idx = pl.DataFrame({item: items, "_i": np.arange(len(items))})
    ann_idx = pl.DataFrame({annotator: annotators, "_a": np.arange(len(annotators))})
    cls_idx = pl.DataFrame(
        {label: pl.Series(classes, dtype=data.schema[label]), "_c": np.arange(k)}
    )
    coded = data.join(item_idx, on=item).join(ann_idx, on=annotator).join(cls_idx, on=label)
    wide = np.full((len(items), len(annotators)), np.nan)
    wide[coded["_i"].to_numpy(), coded["_a"].to_numpy()] = coded["_c"].to_numpy()
    rng = np.random.default_rng(seed)
    tie_break = rng.random(counts.shape) * 1e-6
    majority = (counts + tie_break).argmax(axis=1)

    carry = [c for c in data.columns if c not in (annotator, label, gold, time)]
    first = data.group_by(item, maintain_order=True).agg(
        [pl.col(c).first() for c in carry if c != item]
        + ([pl.col(gold).drop_nulls().first().alias(gold)] if gold else [])
    )
    item_frame = pl.DataFrame({item: items}).join(first, on=item, how="left", maintain_order="left")
    say("consensus labels")
    probs, probs_note = _item_pred_probs(
        item_frame,
        majority,
        counts,
        features=features,
        text=text,
        folds=folds,
        seed=seed,
        label=label,
    )
    import pandas as pd

    wide_pd = pd.DataFrame(wide, columns=[str(a) for a in annotators.to_list()])
    res = ma.get_label_quality_multiannotator(
        wide_pd,
        probs,
        consensus_method="best_quality" if method == "crowdlab" else "majority_vote",
        verbose=False,
    )
    lq = res["label_quality"]
    cons_idx = lq["consensus_label"].to_numpy().astype(np.int64)
    agreement = lq["annotator_agreement"].to_numpy().astype(np.float64)
    n_ann = lq["num_annotations"].to_numpy().astype(np.int64)
    low = (agreement < min_agreement) | (n_ann < min_annotations)
    class_s = pl.Series(label, classes, dtype=data.schema[label])
    out = item_frame.with_columns(
        class_s.gather(pl.Series(cons_idx)).alias(label),
        pl.Series(
            "consensus_quality_score", lq["consensus_quality_score"].to_numpy(), dtype=pl.Float64
        ),
        pl.Series("annotator_agreement", agreement, dtype=pl.Float64),
        pl.Series("num_annotations", n_ann, dtype=pl.Int64),
        pl.Series("is_low_agreement_issue", low, dtype=pl.Boolean),
        pl.Series("low_agreement_score", agreement, dtype=pl.Float64),
    )
    stats = res["annotator_stats"].reset_index(names="annotator")
    ann_table = pl.from_pandas(
        stats[
            ["annotator", "annotator_quality", "agreement_with_consensus", "num_examples_labeled"]
        ]
    )
    ann_table = ann_table.with_columns(pl.col("annotator").cast(pl.String))
    report: dict[str, Any] = {
        **summary,
        "duplicates_dropped": dupes,
        "null_labels_dropped": n_null,
        "warnings": warns,
        "method": method,
        "pred_probs": probs_note,
    }
    if gold is not None:
        gold_rows = data.filter(pl.col(gold).is_not_null())
        per_ann = (
            gold_rows.group_by(annotator)
            .agg(
                (pl.col(label).cast(pl.String) == pl.col(gold).cast(pl.String))
                .mean()
                .alias("gold_accuracy"),
                pl.len().alias("gold_items"),
            )
            .with_columns(pl.col(annotator).cast(pl.String).alias("annotator"))
            .drop(annotator if annotator != "annotator" else [])
        )
        ann_table = ann_table.join(
            per_ann.select("annotator", "gold_accuracy", "gold_items"), on="annotator", how="left"
        )
        drift = gold_accuracy_drift(
            data,
            annotator=annotator,
            label=label,
            gold=gold,
            time=time,
            window=window,
            drift_threshold=drift_threshold,
            min_window_items=min_window_items,
        )
        flagged = drift.filter(pl.col("drift"))
        report["gold_drift"] = {
            "windows": drift.height,
            "drift_windows": flagged.height,
            "annotators_drifting": sorted(set(flagged.get_column("annotator").to_list())),
        }
        gold_items = out.filter(pl.col(gold).is_not_null())
        if gold_items.height:
            hits = int(
                (gold_items[label].cast(pl.String) == gold_items[gold].cast(pl.String)).sum()
            )
            acc = hits / gold_items.height
            lo, hi = wilson(hits, gold_items.height, empty=_NO_CI)
            report["consensus_gold_accuracy"] = {
                "accuracy": acc,
                "ci_low": lo,
                "ci_high": hi,
                "n": gold_items.height,
            }
        gold_tables = {"gold_drift": drift}
    else:
        gold_tables = {}
    votes = (
        coded.sort("_a")
        .group_by(item, maintain_order=True)
        .agg(
            pl.format("{}={}", pl.col(annotator).cast(pl.String), pl.col(label).cast(pl.String))
            .str.join(", ")
            .alias("votes")
        )
    )
    adjudication = (
        out.filter(pl.col("is_low_agreement_issue"))
        .select(
            item,
            pl.col(label).alias("consensus_label"),
            "annotator_agreement",
            "num_annotations",
            "consensus_quality_score",
        )
        .join(votes, on=item, how="left", maintain_order="left")
        .sort("annotator_agreement")
    )
    if low_agreement in ("drop", "adjudicate"):
        out = out.filter(~pl.col("is_low_agreement_issue"))
    report.update(
        {
            "rows_in": df.height + n_null,
            "rows_out": out.height,
            "low_agreement": int(low.sum()),
            "low_agreement_action": low_agreement,
            "min_agreement": min_agreement,
            "mean_annotator_agreement": float(np.nanmean(agreement)),
            "annotator_table": ann_table.sort("annotator_quality").head(20).to_dicts(),
        }
    )
    report["tables"] = {
        "annotators": ann_table,
        "pairwise_kappa": pairs,
        "adjudication": adjudication,
        **gold_tables,
    }
    return out, report
