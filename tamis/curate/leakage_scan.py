"""The checks of `find_leakage` as one scan of the input: built on the eval sets, fed the input
batch by batch (each batch's leaked rows dropped or flagged at once), finished into the report.

    scan = LeakageScan(schema, {"test": test}, config, seed=0)
    out = scan.batch(df, offset=0)                 # the in-memory path: one batch
    report, tables = scan.finish(target=df)        # target: the input for target leakage

The bounded engine (`leakage_bounded.py`) feeds many batches; every figure is a sum or a union
over the batches and every table a sort on row numbers, so the result does not depend on them.
The Ray engine ships the built scan to tasks, each starts from nothing (`fresh`), scans its
range and returns `state()` (plain counts and Arrow frames); the driver `merge`s the states in
source order and finishes with the single-process report and tables:

    scan.fresh(); out = scan.batch(rows, offset); counts, frames = scan.state()   # a task
    driver_scan.merge((counts, frames))                  # the driver, in source order
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from tamis.curate.contamination import NearCheck, NgramCheck
from tamis.curate.dedup.keys import check_columns, check_text_column, resolve_normalize
from tamis.curate.label_column import drop_null_labels
from tamis.curate.leakage_checks import (
    ExactCheck,
    GroupCheck,
    State,
    Tally,
    TemporalCheck,
    check_column,
)
from tamis.curate.target_leakage import target_leakage
from tamis.errors import DataError

if TYPE_CHECKING:
    from tamis.curate.leakage import LeakageConfig


def key_columns(schema: pl.Schema, ev: pl.DataFrame, name: str, config: LeakageConfig) -> list[str]:
    """The exact check's key columns for one eval set, after checking the eval set's columns."""
    if ev.height == 0:
        raise DataError(f"eval set '{name}' has no rows", field="against")
    keyless = {c for c in (config.label, config.group, config.time) if c}
    if config.columns == "all":
        cols = [c for c in schema.names() if c in ev.columns and c not in keyless]
    else:
        cols = list(dict.fromkeys(check_columns(schema, config.columns)))
        check_columns(ev, cols)
    for c in config.special():
        if c != config.label:
            check_column(ev, c, f"eval set '{name}'", "params")
    if config.text:
        check_text_column(ev, config.text, field="text")
    return cols


#: what each check accumulates over the batches (the text checks' from `contamination.py`)
TALLIES: dict[str, Tally] = {
    "exact": ExactCheck.tally,
    "ngram": Tally(counts=("carrying",), hits=("eval_hit",), capped=("shared",)),
    "near": Tally(counts=("input_rows", "pairs"), hits=("eval_hit",), capped=("table",)),
    "group": GroupCheck.tally,
    "temporal": TemporalCheck.tally,
}
_SEP = ":"


@dataclass
class _EvalSet:
    """The checks against one eval set (each None when not asked for)."""

    name: str
    rows: int
    exact: ExactCheck | None = None
    ngram: NgramCheck | None = None
    near: NearCheck | None = None
    group: GroupCheck | None = None
    temporal: TemporalCheck | None = None

    def checks(self) -> list[tuple[str, Any]]:
        """(name, check) of the checks asked for."""
        return [(k, getattr(self, k)) for k in TALLIES if getattr(self, k) is not None]


def _eval_set(
    schema: pl.Schema, name: str, ev: pl.DataFrame, config: LeakageConfig, seed: int
) -> _EvalSet:
    cols = key_columns(schema, ev, name, config)
    cap = config.max_table_rows
    checks = _EvalSet(name, ev.height)
    if cols:
        label = config.label if config.label in ev.columns else None
        ops = resolve_normalize(config.normalize)
        checks.exact = ExactCheck(schema, ev, cols, ops, config.round_floats, label, cap)
    if config.text:
        checks.ngram = NgramCheck(ev, config.text, config.ngram, cap)
        if config.near_threshold is not None:
            checks.near = NearCheck(
                ev,
                config.text,
                config.near_threshold,
                config.near_ngram,
                config.num_perm,
                seed,
                cap,
            )
    if config.group:
        checks.group = GroupCheck(schema, ev, config.group, cap)
    if config.time:
        checks.temporal = TemporalCheck(schema, ev, config.time)
    if not any((checks.exact, checks.ngram, checks.group, checks.temporal)):
        raise DataError(
            f"nothing to compare with eval set '{name}': it shares no column with the input",
            field="columns",
            fix="give `columns`, `text`, `group` or `time` naming columns on both sides",
        )
    return checks


@dataclass
class _BatchLeaks:
    """One batch's leaked rows per check (numbered within the batch) and best near Jaccard."""

    n: int
    rows: dict[str, np.ndarray] = field(default_factory=dict)
    best_near: np.ndarray = field(default_factory=lambda: np.zeros(0))

    def add(self, check: str, hit: np.ndarray) -> None:
        self.rows[check] = np.union1d(self.rows.get(check, np.zeros(0, np.int64)), hit)


def _probe(checks: _EvalSet, batch: pl.DataFrame, offset: int, found: _BatchLeaks) -> None:
    if checks.exact is not None:
        found.add("exact", checks.exact.probe(batch, offset))
    if checks.ngram is not None:
        found.add("ngram", checks.ngram.probe(batch, offset))
    if checks.near is not None:
        hit, best = checks.near.probe(batch, offset)
        found.best_near = np.maximum(found.best_near, best)
        found.add("near", hit)
    if checks.group is not None:
        found.add("group", checks.group.probe(batch, offset))
    if checks.temporal is not None:
        found.add("temporal", checks.temporal.probe(batch, offset))


def target_columns(schema: pl.Schema, config: LeakageConfig) -> list[str]:
    """The columns target leakage reads: the label and the features."""
    assert config.label is not None
    feats = (
        list(dict.fromkeys(check_columns(schema, list(config.features), field="features")))
        if config.features
        else [c for c in schema.names() if c not in config.special()]
    )
    return [config.label, *(f for f in feats if f != config.label)]


def _target_leakage_check(
    df: pl.DataFrame, config: LeakageConfig, seed: int, warnings: list[str]
) -> tuple[dict[str, Any], pl.DataFrame]:
    """Single features that predict the label (on the labelled rows) -> (report section, table)."""
    label, threshold = config.label, config.target_auc_threshold
    assert label is not None and threshold is not None
    feats = target_columns(df.schema, config)[1:]
    labelled, n_null, warns = drop_null_labels(df, label, purpose="target leakage")
    warnings += warns
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
    section = {
        "null_labels_dropped": n_null,
        "threshold_auc": threshold,
        "flagged_features": tl.filter(pl.col("flagged"))["feature"].to_list(),
        "features": tl.to_dicts(),
    }
    return section, tl


def _flag_columns(
    df: pl.DataFrame, mask: np.ndarray, found: _BatchLeaks, reasons: dict[str, np.ndarray]
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


class LeakageScan:
    """Every check of `config` against the eval sets `sets`, for an input of `schema`."""

    def __init__(
        self, schema: pl.Schema, sets: dict[str, pl.DataFrame], config: LeakageConfig, seed: int
    ) -> None:
        self.config, self.seed = config, seed
        self.sets = [_eval_set(schema, name, ev, config, seed) for name, ev in sets.items()]
        self.fresh()

    def fresh(self) -> None:
        """Nothing seen yet (a task's copy starts here; the built eval side is kept)."""
        self.by_check: dict[str, int] = {}
        self.leaked = self.rows_in = self.rows_out = 0
        for checks in self.sets:
            for name, check in checks.checks():
                TALLIES[name].fresh(check)

    def state(self) -> State:
        """What the batches fed so far added up to: plain counts and frames (see `merge`)."""
        counts = {"leaked": self.leaked, "rows_in": self.rows_in, "rows_out": self.rows_out}
        counts |= {f"by_check{_SEP}{k}": v for k, v in self.by_check.items()}
        frames: dict[str, pl.DataFrame] = {}
        for i, checks in enumerate(self.sets):
            for name, check in checks.checks():
                c, f = TALLIES[name].state(check)
                prefix = f"{i}{_SEP}{name}{_SEP}"
                counts |= {prefix + k: v for k, v in c.items()}
                frames |= {prefix + k: v for k, v in f.items()}
        return counts, frames

    def merge(self, state: State) -> None:
        """Add the `state` of a copy of this scan fed later rows than those merged so far (the
        states of a source's ranges merged in source order give what one scan of all of them
        gives)."""
        counts, frames = state
        for k in ("leaked", "rows_in", "rows_out"):
            setattr(self, k, getattr(self, k) + int(counts[k]))
        for k, v in counts.items():
            if k.startswith(f"by_check{_SEP}"):
                check = k.split(_SEP, 1)[1]
                self.by_check[check] = self.by_check.get(check, 0) + int(v)
        for i, checks in enumerate(self.sets):
            for name, check in checks.checks():
                prefix = f"{i}{_SEP}{name}{_SEP}"
                mine = (
                    {k[len(prefix) :]: v for k, v in counts.items() if k.startswith(prefix)},
                    {k[len(prefix) :]: v for k, v in frames.items() if k.startswith(prefix)},
                )
                TALLIES[name].merge(check, mine)

    def batch(self, frame: pl.DataFrame, offset: int) -> pl.DataFrame:
        """The batch's rows after the action (its rows are `offset`, `offset + 1`, ...)."""
        found = _BatchLeaks(n=frame.height, best_near=np.zeros(frame.height))
        for checks in self.sets:
            _probe(checks, frame, offset, found)
        for k, v in found.rows.items():
            self.by_check[k] = self.by_check.get(k, 0) + int(v.size)
        reasons: dict[str, np.ndarray] = {
            k: v for k, v in found.rows.items() if k in self.config.drop_on
        }
        mask = np.zeros(frame.height, dtype=bool)
        for rows in reasons.values():
            mask[rows] = True
        self.leaked += int(mask.sum())
        self.rows_in += frame.height
        if self.config.action == "drop":
            out = frame.filter(pl.Series(~mask))
        elif self.config.action == "flag":
            out = _flag_columns(frame, mask, found, reasons)
        else:
            out = frame
        self.rows_out += out.height
        return out

    def finish(
        self, target: pl.DataFrame | None = None
    ) -> tuple[dict[str, Any], dict[str, pl.DataFrame]]:
        """(report, tables); `target` holds (at least) `target_columns` of the whole input when
        target leakage is asked for."""
        config = self.config
        warnings: list[str] = []
        report: dict[str, Any] = {"rows_in": self.rows_in, "against": {}, "warnings": warnings}
        tables: dict[str, pl.DataFrame] = {}
        for checks in self.sets:
            report["against"][checks.name] = self._section(checks, tables, warnings)
        if config.label and config.target_auc_threshold is not None:
            assert target is not None
            section, tl = _target_leakage_check(target, config, self.seed, warnings)
            report["target_leakage"] = section
            tables["target_leakage"] = tl
        report["leaked_rows"] = self.leaked
        report["leaked_rows_by_check"] = dict(self.by_check)
        report["drop_on"] = list(config.drop_on)
        report["action"] = config.action
        report["rows_out"] = self.rows_out
        report["removed"] = self.rows_in - self.rows_out
        return report, tables

    def _section(
        self, checks: _EvalSet, tables: dict[str, pl.DataFrame], warnings: list[str]
    ) -> dict[str, Any]:
        name = checks.name
        rep: dict[str, Any] = {"rows": checks.rows}
        if checks.exact is not None:
            rep["exact"], tables[f"{name}_exact"], conflicts = checks.exact.finish()
            if conflicts is not None:
                tables[f"{name}_conflicting_labels"] = conflicts
                nulls = rep["exact"]["conflicting_labels"]["null_labels_dropped"]
                if any(nulls.values()):
                    warnings.append(
                        f"{nulls['input']:,} input and {nulls['eval']:,} eval row(s) of '{name}'"
                        f" have a null label in '{self.config.label}': left out of conflicting"
                        " labels"
                    )
        if checks.ngram is not None:
            rep["ngram"], tables[f"{name}_ngram"] = checks.ngram.finish()
        if checks.near is not None:
            rep["near"], tables[f"{name}_near"] = checks.near.finish()
        if checks.group is not None:
            rep["group"], tables[f"{name}_group"] = checks.group.finish()
        if checks.temporal is not None:
            rep["temporal"] = checks.temporal.finish()
        return rep
