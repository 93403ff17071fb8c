"""Train/eval leakage and contamination checks between a dataset and one or more others.

    from tamis.curate.leakage import find_leakage
    config = LeakageConfig(label="income", group="user_id")
    out, report, tables = find_leakage(train, {"test": test}, config)

Checks (each against every eval set; all counts are plain row counts):
- exact: input rows whose key (the `columns`, normalised as in `exact_dedup`) occurs in the eval
  set, and eval rows whose key occurs in the input. Nulls equal nulls.
- conflicting_labels: exact key matches whose labels differ (same features, different label).
  A null label is not a class: pairs with an unlabelled side are left out (counted in
  `null_labels_dropped`, with a warning), as are null-label rows in target leakage.
- near: with `text` and `near_threshold`, pairs across the two sets whose word-shingle
  Jaccard is >= the threshold (MinHash + LSH + exact verification, as `near_dedup_text`).
- ngram: with `text`, 13-gram contamination (GPT-3 / Llama style): the eval items that share
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
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.contamination import near_overlap, ngram_contamination
from tamis.curate.dedup.keys import (
    check_columns,
    check_text_column,
    resolve_normalize,
)
from tamis.curate.label_column import check_label_dtype, drop_null_labels
from tamis.curate.leakage_checks import check_column, exact_matches, later_than_eval, shared_groups
from tamis.curate.target_leakage import target_leakage
from tamis.errors import DataError

LeakAction = Literal["report", "drop", "flag"]
Check = Literal["exact", "near", "ngram", "group", "temporal"]
ROW_CHECKS: tuple[Check, ...] = ("exact", "near", "ngram", "group", "temporal")


class LeakageConfig(Config):
    """Which checks run against the eval sets, on which columns, and what happens to leaked rows."""

    columns: Literal["all"] | list[str] = Field(
        default="all",
        description="key of the exact check: all (shared columns minus label/group/time) or a list",
    )
    normalize: bool | list[Literal["strip", "casefold", "nfkc"]] = Field(
        default=False, description="normalise strings of the key (as in dedup)"
    )
    round_floats: int | None = Field(default=None, ge=0, description="round floats of the key")
    label: str | None = Field(default=None, description="label: conflicting labels, target leakage")
    group: str | None = Field(default=None, description="entity id column: group leakage")
    time: str | None = Field(default=None, description="time column: temporal leakage")
    text: str | None = Field(
        default=None, description="text column: n-gram contamination, near overlap"
    )
    ngram: int = Field(default=13, ge=1, le=64, description="contamination n-gram size (words)")
    near_threshold: float | None = Field(
        default=0.8, gt=0, le=1, description="near-overlap Jaccard threshold (null: skip)"
    )
    near_ngram: int = Field(default=5, ge=1, le=64, description="near-overlap shingle size (words)")
    num_perm: int = Field(default=128, ge=8, le=1024, description="MinHash permutations")
    target_auc_threshold: float | None = Field(
        default=0.99, gt=0.5, le=1, description="flag features with CV AUC >= this (null: skip)"
    )
    features: list[str] | None = Field(
        default=None, description="features tested for target leakage"
    )
    cv_folds: int = Field(default=5, ge=2, le=20, description="folds of the target-leakage AUC")
    drop_on: list[Check] = Field(
        default=list(ROW_CHECKS),
        description="row checks whose hits count as leaked for drop/flag",
    )
    action: LeakAction = Field(
        default="report",
        description="report only; drop leaked input rows (never eval rows); or flag them",
    )
    max_table_rows: int = Field(default=1_000_000, ge=0, description="cap on each detail table")

    def special(self) -> list[str]:
        """The label, group, time and text columns that are given."""
        return [c for c in (self.label, self.group, self.time, self.text) if c]


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


@dataclass
class _Leaks:
    """What the checks found so far: leaked input rows per check, best near-match Jaccard per
    input row, detail tables and warnings."""

    n: int
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    best_near: np.ndarray = field(default_factory=lambda: np.zeros(0))
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def add(self, check: str, hit: np.ndarray) -> None:
        self.rows[check] = np.union1d(self.rows.get(check, np.zeros(0, np.int64)), hit)


def _check_inputs(
    df: pl.DataFrame,
    against: Mapping[str, pl.DataFrame] | Sequence[pl.DataFrame] | pl.DataFrame,
    config: LeakageConfig,
) -> dict[str, pl.DataFrame]:
    """The eval sets by name, after checking the input and its special columns."""
    sets = _named(against)
    if df.height == 0:
        raise DataError("the input has no rows", fix="check the previous step's filters")
    if not sets:
        raise DataError(
            "no eval set to compare against",
            field="against",
            fix="give `against: <step or source>` (one or a list)",
        )
    for c in config.special():
        check_column(df, c, "input", "params")
    if config.label:
        check_label_dtype(df, config.label)
    if config.text:
        check_text_column(df, config.text, field="text")
    return sets


def _key_columns(df: pl.DataFrame, ev: pl.DataFrame, name: str, config: LeakageConfig) -> list[str]:
    """The exact check's key columns for one eval set, after checking the eval set's columns."""
    if ev.height == 0:
        raise DataError(f"eval set '{name}' has no rows", field="against")
    keyless = {c for c in (config.label, config.group, config.time) if c}
    if config.columns == "all":
        cols = [c for c in df.columns if c in ev.columns and c not in keyless]
    else:
        cols = list(dict.fromkeys(check_columns(df, config.columns)))
        check_columns(ev, cols)
    for c in config.special():
        if c != config.label:
            check_column(ev, c, f"eval set '{name}'", "params")
    if config.text:
        check_text_column(ev, config.text, field="text")
    return cols


def _exact_check(
    df: pl.DataFrame,
    ev: pl.DataFrame,
    name: str,
    cols: list[str],
    config: LeakageConfig,
    found: _Leaks,
) -> dict[str, Any]:
    """Exact key matches and conflicting labels against one eval set."""
    label = config.label if config.label in ev.columns else None
    ops = resolve_normalize(config.normalize)
    ex, hit, tbl, _, conflicts = exact_matches(
        df, ev, cols, ops, config.round_floats, label, config.max_table_rows
    )
    nulls = ex.get("conflicting_labels", {}).get("null_labels_dropped", {})
    if any(nulls.values()):
        found.warnings.append(
            f"{nulls['input']:,} input and {nulls['eval']:,} eval row(s) of '{name}' have a"
            f" null label in '{config.label}': left out of conflicting labels"
        )
    found.add("exact", hit)
    found.tables[f"{name}_exact"] = tbl
    if label is not None:
        found.tables[f"{name}_conflicting_labels"] = conflicts
    return ex


def _text_checks(
    df: pl.DataFrame, ev: pl.DataFrame, name: str, config: LeakageConfig, seed: int, found: _Leaks
) -> dict[str, Any]:
    """N-gram contamination and (with `near_threshold`) near-duplicate overlap of the text."""
    assert config.text is not None
    out: dict[str, Any] = {}
    ng, hit, tbl = ngram_contamination(df, ev, config.text, config.ngram, config.max_table_rows)
    out["ngram"] = ng
    found.add("ngram", hit)
    found.tables[f"{name}_ngram"] = tbl
    if config.near_threshold is not None:
        nr, hit, best, tbl = near_overlap(
            df,
            ev,
            config.text,
            config.near_threshold,
            config.near_ngram,
            config.num_perm,
            seed,
            config.max_table_rows,
        )
        out["near"] = nr
        found.best_near = np.maximum(found.best_near, best)
        found.add("near", hit)
        found.tables[f"{name}_near"] = tbl
    return out


def _check_eval_set(
    df: pl.DataFrame, name: str, ev: pl.DataFrame, config: LeakageConfig, seed: int, found: _Leaks
) -> dict[str, Any]:
    """Every row check against one eval set -> its report section."""
    cols = _key_columns(df, ev, name, config)
    rep: dict[str, Any] = {"rows": ev.height}
    if cols:
        rep["exact"] = _exact_check(df, ev, name, cols, config, found)
    if config.text:
        rep.update(_text_checks(df, ev, name, config, seed, found))
    if config.group:
        gr, hit, tbl = shared_groups(df, ev, config.group, config.max_table_rows)
        rep["group"] = gr
        found.add("group", hit)
        found.tables[f"{name}_group"] = tbl
    if config.time:
        tm, hit = later_than_eval(df, ev, config.time)
        rep["temporal"] = tm
        found.add("temporal", hit)
    if len(rep) == 1:
        raise DataError(
            f"nothing to compare with eval set '{name}': it shares no column with the input",
            field="columns",
            fix="give `columns`, `text`, `group` or `time` naming columns on both sides",
        )
    return rep


def _target_leakage_check(
    df: pl.DataFrame, config: LeakageConfig, seed: int, found: _Leaks
) -> dict[str, Any]:
    """Single features that predict the label (on the labelled rows) -> the report section."""
    label, threshold = config.label, config.target_auc_threshold
    assert label is not None and threshold is not None
    feats = (
        list(dict.fromkeys(check_columns(df, list(config.features), field="features")))
        if config.features
        else [c for c in df.columns if c not in config.special()]
    )
    labelled, n_null, warns = drop_null_labels(df, label, purpose="target leakage")
    found.warnings += warns
    if labelled.height == 0:
        raise DataError(
            "every label is null: target leakage needs labelled rows",
            column=label,
            field="label",
            fix="name the column holding the class in `label`, or set"
            " target_auc_threshold: null to skip target leakage",
        )
    tl = target_leakage(
        labelled, label, feats, threshold=threshold, folds=config.cv_folds, seed=seed
    )
    found.tables["target_leakage"] = tl
    return {
        "null_labels_dropped": n_null,
        "threshold_auc": threshold,
        "flagged_features": tl.filter(pl.col("flagged"))["feature"].to_list(),
        "features": tl.to_dicts(),
    }


def _flag_columns(
    df: pl.DataFrame, mask: np.ndarray, reasons: dict[str, np.ndarray], found: _Leaks
) -> pl.DataFrame:
    """`is_leakage_issue`, `leakage_score` (0 leaked, 1 - Jaccard for near-only, 1 clean) and
    `leakage_reasons` beside the input."""
    n = df.height
    score = np.where(mask, 0.0, 1.0)
    only_near = mask.copy()
    for k, rows in reasons.items():
        if k != "near":
            only_near[rows] = False
    score[only_near] = 1.0 - found.best_near[only_near]
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
    return df.with_columns(
        pl.Series("is_leakage_issue", mask), pl.Series("leakage_score", score), reason_lists
    )


def _apply_action(
    df: pl.DataFrame, config: LeakageConfig, found: _Leaks, report: dict[str, Any]
) -> pl.DataFrame:
    """Drop or flag the rows the `drop_on` checks found (the report gets the counts)."""
    reasons: dict[str, np.ndarray] = {k: v for k, v in found.rows.items() if k in config.drop_on}
    mask = np.zeros(df.height, dtype=bool)
    for rows in reasons.values():
        mask[rows] = True
    report["leaked_rows"] = int(mask.sum())
    report["leaked_rows_by_check"] = {k: int(v.size) for k, v in found.rows.items()}
    report["drop_on"] = list(config.drop_on)
    report["action"] = config.action
    if config.action == "drop":
        return df.filter(pl.Series(~mask))
    if config.action == "flag":
        return _flag_columns(df, mask, reasons, found)
    return df


def find_leakage(
    df: pl.DataFrame,
    against: Mapping[str, pl.DataFrame] | Sequence[pl.DataFrame] | pl.DataFrame,
    config: LeakageConfig | None = None,
    *,
    seed: int = 0,
) -> LeakageResult:
    """Check `df` (training data) against eval sets; see the module docstring for each check.

    `against` is one eval frame, a list, or a dict name -> frame. `seed` seeds the MinHash of the
    near check and the folds of target leakage. Conflicting-label rows are a subset of the exact
    matches.

    Returns:
        LeakageResult(frame, report, tables).
    """
    config = config or LeakageConfig()
    sets = _check_inputs(df, against, config)
    found = _Leaks(n=df.height, best_near=np.zeros(df.height))
    report: dict[str, Any] = {"rows_in": df.height, "against": {}, "warnings": found.warnings}
    for name, ev in sets.items():
        report["against"][name] = _check_eval_set(df, name, ev, config, seed, found)
    if config.label and config.target_auc_threshold is not None:
        report["target_leakage"] = _target_leakage_check(df, config, seed, found)
    out = _apply_action(df, config, found, report)
    report["rows_out"] = out.height
    report["removed"] = df.height - out.height
    return LeakageResult(out, report, found.tables)
