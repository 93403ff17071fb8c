"""Train/eval leakage and contamination checks between a dataset and one or more others.

    from tamis.curate.leakage import find_leakage
    out, report, tables = find_leakage(train, {"test": test}, label="income", group="user_id")

Checks (each against every eval set; all counts are plain row counts):
- exact: input rows whose key (the `columns`, normalised as in `exact_dedup`) occurs in the eval
  set, and eval rows whose key occurs in the input. Nulls equal nulls.
- conflicting_labels: exact key matches whose labels differ (same features, different label).
  A null label is not a class: pairs with an unlabelled side are left out (counted in
  `null_labels_dropped`, with a warning), as are null-label rows in target leakage.
- near: with `text_column` and `near_threshold`, pairs across the two sets whose word-shingle
  Jaccard is >= the threshold (MinHash + LSH + exact verification, as `near_dedup_text`).
- ngram: with `text_column`, 13-gram contamination (GPT-3 / Llama style): the eval items that share
  at least one word n-gram with the input, and the input rows that carry them.
- group: the same entity id (`group` column) on both sides.
- temporal: with `time`, input rows later than the earliest eval row.
- target_leakage (inside the input): a single feature whose cross-validated AUC for the label (out
  of fold target encoding of its quantile bins) is >= `target_auc_threshold`.

`action="drop"` removes leaked rows from the input only (never from an eval set); `"flag"` adds
`is_leakage_issue`, `leakage_score` (0 leaked, 1 - Jaccard for near matches, 1 clean) and
`leakage_reasons`; `"report"` returns the input unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

from tamis.curate.contamination import near_overlap, ngram_contamination
from tamis.curate.dedup.keys import (
    check_columns,
    check_text_column,
    normalized_key_exprs,
    resolve_normalize,
)
from tamis.curate.label_features import check_label_dtype, drop_null_labels, null_label_mask
from tamis.curate.target_leakage import target_leakage
from tamis.errors import StepError

LeakAction = Literal["report", "drop", "flag"]
ROW_CHECKS = ("exact", "near", "ngram", "group", "temporal")
_R = "__tamis_row"
_E = "__tamis_eval_row"


class LeakageResult(NamedTuple):
    """Unpacks as `(frame, report, tables)`; tables are keyed by check name."""

    frame: pl.DataFrame
    report: dict[str, Any]
    tables: dict[str, pl.DataFrame]


def _named(
    against: Mapping[str, pl.DataFrame] | Sequence[pl.DataFrame] | pl.DataFrame,
) -> dict[str, pl.DataFrame]:
    if isinstance(against, pl.DataFrame):
        return {"against": against}
    if isinstance(against, Mapping):
        return dict(against)
    return {f"against_{i}": f for i, f in enumerate(against)}


def _check_col(df: pl.DataFrame, col: str, side: str, field: str, step: str) -> None:
    if col not in df.columns:
        raise StepError(
            f"column not found in the {side}",
            step=step,
            column=col,
            field=field,
            fix=f"choose from: {', '.join(df.columns)}",
        )
    if df.height and df[col].null_count() == df.height:
        raise StepError(
            f"column is entirely null in the {side}", step=step, column=col, field=field
        )


def common_dtypes(
    left: pl.DataFrame, right: pl.DataFrame, cols: Sequence[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Make `cols` comparable across two frames: equal dtypes stay, numbers meet as Float64,
    anything else as strings (so a value that does not parse never turns into a matching null)."""
    lcast, rcast = [], []
    for c in cols:
        lt, rt = left.schema[c], right.schema[c]
        if lt == rt:
            continue
        target = pl.Float64 if lt.is_numeric() and rt.is_numeric() else pl.String
        lcast.append(pl.col(c).cast(target))
        rcast.append(pl.col(c).cast(target))
    return left.with_columns(lcast), right.with_columns(rcast)


def _exact(
    df: pl.DataFrame,
    ev: pl.DataFrame,
    cols: list[str],
    ops: Sequence[str],
    round_floats: int | None,
    label: str | None,
    max_rows: int,
) -> tuple[dict[str, Any], np.ndarray, pl.DataFrame, np.ndarray, pl.DataFrame]:
    schema = df.schema
    left = df.select(normalized_key_exprs(schema, cols, ops, round_floats)).with_row_index(_R)
    right = ev.select(normalized_key_exprs(ev.schema, cols, ops, round_floats)).with_row_index(_E)
    left, right = common_dtypes(left, right, cols)
    if label is not None:
        left = left.with_columns(df[label].alias("__label"))
        right = right.with_columns(ev[label].alias("__label"))
        left, right = common_dtypes(left, right, ["__label"])
    train_hit = left.join(right, on=cols, how="semi", nulls_equal=True)[_R].to_numpy()
    eval_hit = right.join(left, on=cols, how="semi", nulls_equal=True)[_E].to_numpy()
    pairs = left.join(right, on=cols, how="inner", nulls_equal=True)
    report: dict[str, Any] = {
        "columns": cols,
        "input_rows": int(train_hit.size),
        "eval_rows": int(eval_hit.size),
        "eval_share": eval_hit.size / ev.height if ev.height else 0.0,
    }
    conflict_rows = np.zeros(0, dtype=np.int64)
    conflicts = pl.DataFrame()
    if label is not None:
        # a null label is not a class: a pair with an unlabelled side is not a conflict
        bad = pairs.filter(
            pl.col("__label").is_not_null()
            & pl.col("__label_right").is_not_null()
            & pl.col("__label").ne(pl.col("__label_right"))
        )
        conflict_rows = bad[_R].unique().to_numpy()
        conflicts = bad.select(
            pl.col(_R).alias("row"),
            pl.col(_E).alias("eval_row"),
            pl.col("__label").cast(pl.String).alias("label"),
            pl.col("__label_right").cast(pl.String).alias("eval_label"),
        ).head(max_rows)
        report["conflicting_labels"] = {
            "input_rows": int(conflict_rows.size),
            "eval_rows": int(bad[_E].n_unique()),
            "null_labels_dropped": {
                "input": int(null_label_mask(df[label]).sum()),
                "eval": int(null_label_mask(ev[label]).sum()),
            },
        }
    table = pairs.select(pl.col(_R).alias("row"), pl.col(_E).alias("eval_row")).head(max_rows)
    return report, train_hit, table, conflict_rows, conflicts


def _group(
    df: pl.DataFrame, ev: pl.DataFrame, col: str, max_rows: int
) -> tuple[dict[str, Any], np.ndarray, pl.DataFrame]:
    a, b = common_dtypes(df.select(pl.col(col)), ev.select(pl.col(col)), [col])
    a, b = a.with_row_index(_R), b.with_row_index(_E)
    shared = a.select(col).unique().join(b.select(col).unique(), on=col, how="inner")
    hit = a.join(shared, on=col, how="semi")[_R].to_numpy().astype(np.int64)
    eval_rows = b.join(shared, on=col, how="semi").height
    table = (
        a.join(shared, on=col, how="semi")
        .group_by(col)
        .agg(pl.len().alias("input_rows"))
        .join(
            b.join(shared, on=col, how="semi").group_by(col).agg(pl.len().alias("eval_rows")),
            on=col,
        )
        .sort(col)
        .head(max_rows)
    )
    report = {
        "column": col,
        "shared_groups": shared.height,
        "input_rows": int(hit.size),
        "eval_rows": int(eval_rows),
    }
    return report, hit, table


def _temporal(
    df: pl.DataFrame, ev: pl.DataFrame, col: str, step: str
) -> tuple[dict[str, Any], np.ndarray]:
    for frame, side in ((df, "input"), (ev, "eval set")):
        dt = frame.schema[col]
        if not (dt.is_temporal() or dt.is_numeric()):
            raise StepError(
                f"time column has dtype {dt} in the {side}, not a date/time or number",
                step=step,
                column=col,
                field="time",
                fix="parse it first (e.g. pl.col(...).str.to_datetime()) or name another column",
            )
    start = ev[col].cast(df.schema[col]).min()
    later = df.select((pl.col(col) > start).fill_null(False))[col].to_numpy()
    hit = np.nonzero(later)[0].astype(np.int64)
    report = {
        "column": col,
        "eval_start": str(start),
        "input_end": str(df[col].max()),
        "input_rows_after_eval_start": int(hit.size),
    }
    return report, hit


def find_leakage(
    df: pl.DataFrame,
    against: Mapping[str, pl.DataFrame] | Sequence[pl.DataFrame] | pl.DataFrame,
    *,
    columns: Sequence[str] | str | None = "all",
    normalize: bool | Sequence[str] = False,
    round_floats: int | None = None,
    label: str | None = None,
    group: str | None = None,
    time: str | None = None,
    text_column: str | None = None,
    ngram: int = 13,
    near_threshold: float | None = 0.8,
    near_ngram: int = 5,
    num_perm: int = 128,
    target_auc_threshold: float | None = 0.99,
    features: Sequence[str] | None = None,
    cv_folds: int = 5,
    drop_on: Sequence[str] = ROW_CHECKS,
    action: LeakAction = "report",
    seed: int = 0,
    max_table_rows: int = 1_000_000,
    step: str = "leakage",
) -> LeakageResult:
    """Check `df` (training data) against eval sets; see the module docstring for each check.

    Args:
        df: the input (training) rows. against: one eval frame, a list, or a dict name -> frame.
        columns: key columns of the exact check ("all": the columns both sides share, minus the
            label, group and time columns). normalize, round_floats: as in `exact_dedup`.
        label: label column: conflicting labels and target leakage. group: entity id column.
        time: time column: temporal leakage. text_column: enables n-gram contamination and, with
            `near_threshold` (None to skip), near-duplicate overlap.
        ngram: contamination n-gram size (words). near_ngram, num_perm: near-overlap shingles.
        target_auc_threshold: flag features with CV AUC >= this (None: skip target leakage).
        features: features tested for target leakage (default: every column but the special ones).
        drop_on: row checks that mark a row as leaked for drop/flag (exact, near, ngram, group,
            temporal); conflicting-label rows are a subset of exact matches.
        action: "report" (input unchanged), "drop" (leaked input rows removed) or "flag".
        max_table_rows: cap on the rows of each detail table.

    Returns:
        LeakageResult(frame, report, tables).
    """
    if action not in ("report", "drop", "flag"):
        raise StepError(
            f"action must be report, drop or flag, got {action!r}", step=step, field="action"
        )
    bad = [c for c in drop_on if c not in ROW_CHECKS]
    if bad:
        raise StepError(
            f"unknown check {bad[0]!r} in drop_on",
            step=step,
            field="drop_on",
            fix=f"choose from: {', '.join(ROW_CHECKS)}",
        )
    sets = _named(against)
    if df.height == 0:
        raise StepError("the input has no rows", step=step, fix="check the previous step's filters")
    if not sets:
        raise StepError(
            "no eval set to compare against",
            step=step,
            field="against",
            fix="give `against: <step or source>` (one or a list)",
        )
    ops = resolve_normalize(normalize, step=step)
    special = [c for c in (label, group, time, text_column) if c]
    for c in special:
        _check_col(df, c, "input", "params", step)
    if label:
        check_label_dtype(df, label, where=step)
    if text_column:
        check_text_column(df, text_column, step=step, field="text_column")
    n = df.height
    leaked: dict[str, np.ndarray] = {}
    best_near = np.zeros(n)
    report: dict[str, Any] = {"rows_in": n, "against": {}, "warnings": []}
    tables: dict[str, pl.DataFrame] = {}
    for name, ev in sets.items():
        if ev.height == 0:
            raise StepError(f"eval set '{name}' has no rows", step=step, field="against")
        rep: dict[str, Any] = {"rows": ev.height}
        keyless = {c for c in (label, group, time) if c}
        shared = [c for c in df.columns if c in ev.columns and c not in keyless]
        if columns is None or columns == "all":
            cols = shared
        else:
            cols = list(dict.fromkeys(check_columns(df, columns, step=step)))
            check_columns(ev, cols, step=step)
        for c in special:
            if c != label:
                _check_col(ev, c, f"eval set '{name}'", "params", step)
        if text_column:
            check_text_column(ev, text_column, step=step, field="text_column")
        if cols:
            lab = label if label in ev.columns else None
            ex, hit, tbl, conflict_rows, conflicts = _exact(
                df, ev, cols, ops, round_floats, lab, max_table_rows
            )
            rep["exact"] = ex
            nulls = ex.get("conflicting_labels", {}).get("null_labels_dropped", {})
            if any(nulls.values()):
                report["warnings"].append(
                    f"{nulls['input']:,} input and {nulls['eval']:,} eval row(s) of '{name}' have a"
                    f" null label in '{label}': left out of conflicting labels"
                )
            leaked.setdefault("exact", np.zeros(0, np.int64))
            leaked["exact"] = np.union1d(leaked["exact"], hit)
            tables[f"{name}_exact"] = tbl
            if lab is not None:
                tables[f"{name}_conflicting_labels"] = conflicts
        if text_column:
            ng, hit, tbl = ngram_contamination(df, ev, text_column, ngram, max_table_rows)
            rep["ngram"] = ng
            leaked["ngram"] = np.union1d(leaked.get("ngram", np.zeros(0, np.int64)), hit)
            tables[f"{name}_ngram"] = tbl
            if near_threshold is not None:
                nr, hit, best, tbl = near_overlap(
                    df, ev, text_column, near_threshold, near_ngram, num_perm, seed, max_table_rows
                )
                rep["near"] = nr
                best_near = np.maximum(best_near, best)
                leaked["near"] = np.union1d(leaked.get("near", np.zeros(0, np.int64)), hit)
                tables[f"{name}_near"] = tbl
        if group:
            gr, hit, tbl = _group(df, ev, group, max_table_rows)
            rep["group"] = gr
            leaked["group"] = np.union1d(leaked.get("group", np.zeros(0, np.int64)), hit)
            tables[f"{name}_group"] = tbl
        if time:
            tm, hit = _temporal(df, ev, time, step)
            rep["temporal"] = tm
            leaked["temporal"] = np.union1d(leaked.get("temporal", np.zeros(0, np.int64)), hit)
        if len(rep) == 1:
            raise StepError(
                f"nothing to compare with eval set '{name}': it shares no column with the input",
                step=step,
                field="columns",
                fix="give `columns`, `text_column`, `group` or `time` naming columns on both sides",
            )
        report["against"][name] = rep
    if label and target_auc_threshold is not None:
        feats = (
            list(dict.fromkeys(check_columns(df, list(features), step=step, field="features")))
            if features
            else [c for c in df.columns if c not in special]
        )
        labelled, n_null, warns = drop_null_labels(df, label, where=step, purpose="target leakage")
        report["warnings"] += warns
        if labelled.height == 0:
            raise StepError(
                "every label is null: target leakage needs labelled rows",
                step=step,
                column=label,
                field="label",
                fix="name the column holding the class in `label`, or set"
                " target_auc_threshold: null to skip target leakage",
            )
        tl = target_leakage(
            labelled,
            label,
            feats,
            threshold=target_auc_threshold,
            folds=cv_folds,
            seed=seed,
            step=step,
        )
        report["target_leakage"] = {
            "null_labels_dropped": n_null,
            "threshold_auc": target_auc_threshold,
            "flagged_features": tl.filter(pl.col("flagged"))["feature"].to_list(),
            "features": tl.to_dicts(),
        }
        tables["target_leakage"] = tl
    reasons = {k: v for k, v in leaked.items() if k in drop_on}
    mask = np.zeros(n, dtype=bool)
    for rows in reasons.values():
        mask[rows] = True
    report["leaked_rows"] = int(mask.sum())
    report["leaked_rows_by_check"] = {k: int(v.size) for k, v in leaked.items()}
    report["drop_on"] = list(drop_on)
    report["action"] = action
    if action == "drop":
        out = df.filter(pl.Series(~mask))
    elif action == "flag":
        score = np.where(mask, 0.0, 1.0)
        only_near = mask.copy()
        for k, rows in reasons.items():
            if k != "near":
                only_near[rows] = False
        score[only_near] = 1.0 - best_near[only_near]
        reason_lists = pl.DataFrame({"r": np.arange(n)}).with_columns(
            pl.concat_list(
                [
                    pl.when(pl.Series(np.isin(np.arange(n), rows))).then(pl.lit(k))
                    for k, rows in reasons.items()
                ]
            )
            .list.drop_nulls()
            .alias("leakage_reasons")
            if reasons
            else pl.lit([], dtype=pl.List(pl.String)).alias("leakage_reasons")
        )["leakage_reasons"]
        out = df.with_columns(
            pl.Series("is_leakage_issue", mask),
            pl.Series("leakage_score", score),
            reason_lists,
        )
    else:
        out = df
    report["rows_out"] = out.height
    report["removed"] = n - out.height
    return LeakageResult(out, report, tables)
