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
  Jaccard is >= the threshold: every (input, eval) pair sharing a MinHash LSH band key is a
  candidate, verified by its exact Jaccard (identical sets always share every key).
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
from typing import Any, Literal, NamedTuple

import polars as pl
from pydantic import Field

from tamis.config import Config
from tamis.curate.dedup.keys import check_text_column
from tamis.curate.label_column import check_label_dtype
from tamis.curate.leakage_scan import LeakageScan, target_columns
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


def check_input(
    schema: pl.Schema,
    rows: int,
    nulls: Mapping[str, int],
    sets: Mapping[str, pl.DataFrame] | Mapping[str, pl.LazyFrame],
    config: LeakageConfig,
) -> None:
    """The input (its schema, row count and null count per special column) and its special
    columns are usable, and there is an eval set."""
    if rows == 0:
        raise DataError("the input has no rows", fix="check the previous step's filters")
    if not sets:
        raise DataError(
            "no eval set to compare against",
            field="against",
            fix="give `against: <step or source>` (one or a list)",
        )
    for c in config.special():
        if c not in schema:
            raise DataError(
                "column not found in the input",
                column=c,
                field="params",
                fix=f"choose from: {', '.join(schema.names())}",
            )
        if nulls[c] == rows:
            raise DataError("column is entirely null in the input", column=c, field="params")
    empty = pl.DataFrame(schema=schema)
    if config.label:
        check_label_dtype(empty, config.label)
    if config.text:
        check_text_column(empty, config.text, field="text")


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
    matches. The bounded engine runs the same `LeakageScan` over batches of the input
    (`tamis.curate.leakage_bounded`).

    Returns:
        LeakageResult(frame, report, tables).
    """
    config = config or LeakageConfig()
    sets = _named(against)
    nulls = {c: df[c].null_count() for c in config.special() if c in df.columns}
    check_input(df.schema, df.height, nulls, sets, config)
    scan = LeakageScan(df.schema, sets, config, seed)
    out = scan.batch(df, 0)
    target = None
    if config.label and config.target_auc_threshold is not None:
        target = df.select(target_columns(df.schema, config))
    report, tables = scan.finish(target)
    return LeakageResult(out, report, tables)
