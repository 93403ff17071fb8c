"""The row checks of `find_leakage` against one eval set: exact key matches (and conflicting
labels), shared groups, and rows later than the eval set's start; text checks (n-gram
contamination, near overlap) live in `contamination.py`.

Each check is a join with the eval set on its small side: built once from the eval set, then
probed by the input batch by batch (`probe(batch, offset)` -> the batch's leaked rows, numbered
within the batch), and `finish()` gives its report section and tables. The in-memory path is one
batch, the bounded engine streams many; every figure and table is a sum, a union or a sort on
keys that do not depend on the batches, so both give the same.

What a check accumulates over the batches is named by its `Tally` (counts, hit marks over the
eval rows, capped tables, lists of frames): `Tally.state` gives it as plain counts and frames,
`Tally.merge` adds such a state into another copy of the check, and `Tally.fresh` starts from
nothing again; the Ray engine runs copies of the checks in tasks and merges their states in
source order on the driver, which then finishes as if it had seen every batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.dedup.keys import normalized_key_exprs
from tamis.curate.label_column import null_label_mask
from tamis.errors import DataError

_R = "__tamis_row"
_E = "__tamis_eval_row"
_LABEL = "__label"


def check_column(df: pl.DataFrame, col: str, side: str, field: str) -> None:
    if col not in df.columns:
        raise DataError(
            f"column not found in the {side}",
            column=col,
            field=field,
            fix=f"choose from: {', '.join(df.columns)}",
        )
    if df.height and df[col].null_count() == df.height:
        raise DataError(f"column is entirely null in the {side}", column=col, field=field)


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


def cast_like(frame: pl.DataFrame, like: pl.DataFrame, cols: Sequence[str]) -> pl.DataFrame:
    """`frame`'s `cols` cast to the dtypes of `like` (an eval side already met by
    `common_dtypes` with an empty frame of the input's schema)."""
    return frame.with_columns(
        pl.col(c).cast(like.schema[c]) for c in cols if frame.schema[c] != like.schema[c]
    )


class Capped:
    """A detail table kept to `cap` rows of its sort order, from pieces given batch by batch.

    With `ordered` the pieces come in sort order (rows numbered by the batches): the first `cap`
    rows are kept. Otherwise every piece is merged and the first `cap` rows of the sort kept.
    """

    def __init__(self, cap: int, by: Sequence[str], *, ordered: bool) -> None:
        self.cap, self.by, self.ordered = cap, list(by), ordered
        self.pieces: list[pl.DataFrame] = []
        self.rows = 0
        self.empty: pl.DataFrame | None = None

    def add(self, piece: pl.DataFrame) -> None:
        if self.empty is None:
            self.empty = piece.head(0)
        piece = piece.sort(self.by)
        if self.ordered:
            piece = piece.head(max(self.cap - self.rows, 0))
        if piece.height:
            self.pieces.append(piece)
            self.rows += piece.height
        if not self.ordered and self.rows > 2 * self.cap + 100_000:
            self.pieces = [self.table()]
            self.rows = self.pieces[0].height

    def table(self) -> pl.DataFrame:
        if not self.pieces:
            return self.empty if self.empty is not None else pl.DataFrame()
        frame = pl.concat(self.pieces)
        return frame.sort(self.by).head(self.cap)

    def fresh(self) -> Capped:
        """An empty table of the same cap and order."""
        return Capped(self.cap, self.by, ordered=self.ordered)


#: a check's accumulated state: plain counts and frames (JSON and Arrow IPC on the wire)
State = tuple[dict[str, int], dict[str, pl.DataFrame]]


@dataclass(frozen=True)
class Tally:
    """The attributes a check accumulates over the batches, by kind:

    - `counts`: ints, summed;
    - `hits`: boolean marks over the eval rows, or-ed (sent as the marked rows);
    - `capped`: `Capped` tables, merged piece by piece (states merged in source order);
    - `frames`: lists of frames, concatenated (the check sums or reduces them at `finish`).
    """

    counts: tuple[str, ...] = ()
    hits: tuple[str, ...] = ()
    capped: tuple[str, ...] = ()
    frames: tuple[str, ...] = ()

    def fresh(self, check: Any) -> None:
        """Nothing accumulated (new objects: the built side may be read-only shared memory)."""
        for name in self.counts:
            setattr(check, name, 0)
        for name in self.hits:
            setattr(check, name, np.zeros(getattr(check, name).size, dtype=bool))
        for name in self.capped:
            setattr(check, name, getattr(check, name).fresh())
        for name in self.frames:
            setattr(check, name, [])

    def state(self, check: Any) -> State:
        counts = {name: int(getattr(check, name)) for name in self.counts}
        frames: dict[str, pl.DataFrame] = {}
        for name in self.hits:
            marked = np.flatnonzero(getattr(check, name)).astype(np.int64)
            frames[name] = pl.DataFrame({"i": marked}, schema={"i": pl.Int64})
        for name in self.capped:
            capped: Capped = getattr(check, name)
            if capped.empty is not None:  # fed at least once (else it knows no schema)
                frames[name] = capped.table()
        for name in self.frames:
            pieces: list[pl.DataFrame] = getattr(check, name)
            if pieces:
                frames[name] = pl.concat(pieces, how="vertical")
        return counts, frames

    def merge(self, check: Any, state: State) -> None:
        """Add `state` (another copy's, of later rows than those merged so far) into `check`."""
        counts, frames = state
        for name in self.counts:
            setattr(check, name, getattr(check, name) + counts[name])
        for name in self.hits:
            getattr(check, name)[frames[name]["i"].to_numpy()] = True
        for name in self.capped:
            if name in frames:
                getattr(check, name).add(frames[name])
        for name in self.frames:
            if name in frames:
                getattr(check, name).append(frames[name])
        compact = getattr(check, "compact", None)
        if compact is not None:
            compact()


class ExactCheck:
    """Input rows whose normalised key occurs in the eval set (a hash join with the eval keys),
    and with `label`, pairs whose labels differ."""

    tally = Tally(
        counts=("input_rows", "conflict_rows", "null_input"),
        hits=("eval_hit", "eval_conflict"),
        capped=("pairs", "conflicts"),
    )

    def __init__(
        self,
        schema: pl.Schema,
        ev: pl.DataFrame,
        cols: list[str],
        ops: Sequence[str],
        round_floats: int | None,
        label: str | None,
        max_rows: int,
    ) -> None:
        self.cols, self.label, self.n_eval = cols, label, ev.height
        self.exprs = normalized_key_exprs(schema, cols, ops, round_floats)
        right = ev.select(normalized_key_exprs(ev.schema, cols, ops, round_floats))
        if label is not None:
            right = right.with_columns(ev[label].alias(_LABEL))
        empty = pl.DataFrame(schema=schema).select(self.exprs)
        if label is not None:
            empty = empty.with_columns(pl.DataFrame(schema=schema)[label].alias(_LABEL))
        self.meet = [*cols, _LABEL] if label is not None else cols
        _, self.right = common_dtypes(empty, right, self.meet)
        self.right = self.right.with_row_index(_E)
        self.eval_hit = np.zeros(ev.height, dtype=bool)
        self.eval_conflict = np.zeros(ev.height, dtype=bool)
        self.input_rows = self.conflict_rows = self.null_input = 0
        self.null_eval = int(null_label_mask(ev[label]).sum()) if label is not None else 0
        self.pairs = Capped(max_rows, ["row", "eval_row"], ordered=True)
        self.conflicts = Capped(max_rows, ["row", "eval_row"], ordered=True)

    def probe(self, batch: pl.DataFrame, offset: int) -> np.ndarray:
        left = batch.select(self.exprs).with_row_index(_R, offset=offset)
        if self.label is not None:
            left = left.with_columns(batch[self.label].alias(_LABEL))
            self.null_input += int(null_label_mask(batch[self.label]).sum())
        left = cast_like(left, self.right, self.meet)
        cols = self.cols
        hit = left.join(self.right, on=cols, how="semi", nulls_equal=True)[_R].to_numpy()
        pairs = left.join(self.right, on=cols, how="inner", nulls_equal=True)
        self.eval_hit[pairs[_E].to_numpy()] = True
        self.input_rows += int(hit.size)
        self.pairs.add(pairs.select(pl.col(_R).alias("row"), pl.col(_E).alias("eval_row")))
        if self.label is not None:
            self._conflicts(pairs)
        return hit.astype(np.int64) - offset

    def _conflicts(self, pairs: pl.DataFrame) -> None:
        # a null label is not a class: a pair with an unlabelled side is not a conflict
        right = f"{_LABEL}_right"
        bad = pairs.filter(
            pl.col(_LABEL).is_not_null()
            & pl.col(right).is_not_null()
            & pl.col(_LABEL).ne(pl.col(right))
        )
        self.conflict_rows += bad[_R].n_unique()
        self.eval_conflict[bad[_E].to_numpy()] = True
        self.conflicts.add(
            bad.select(
                pl.col(_R).alias("row"),
                pl.col(_E).alias("eval_row"),
                pl.col(_LABEL).cast(pl.String).alias("label"),
                pl.col(right).cast(pl.String).alias("eval_label"),
            )
        )

    def finish(self) -> tuple[dict[str, Any], pl.DataFrame, pl.DataFrame | None]:
        """(report section, table of pairs, table of conflicting labels or None)."""
        eval_rows = int(self.eval_hit.sum())
        report: dict[str, Any] = {
            "columns": self.cols,
            "input_rows": self.input_rows,
            "eval_rows": eval_rows,
            "eval_share": eval_rows / self.n_eval if self.n_eval else 0.0,
        }
        if self.label is None:
            return report, self.pairs.table(), None
        report["conflicting_labels"] = {
            "input_rows": self.conflict_rows,
            "eval_rows": int(self.eval_conflict.sum()),
            "null_labels_dropped": {"input": self.null_input, "eval": self.null_eval},
        }
        return report, self.pairs.table(), self.conflicts.table()


class GroupCheck:
    """The same entity id on both sides: the input probes the eval set's groups."""

    tally = Tally(counts=("input_rows",), frames=("counts",))

    def __init__(self, schema: pl.Schema, ev: pl.DataFrame, col: str, max_rows: int) -> None:
        self.col, self.max_rows = col, max_rows
        _, b = common_dtypes(pl.DataFrame(schema=schema).select(col), ev.select(col), [col])
        self.groups = b.group_by(col).agg(pl.len().alias("eval_rows"))
        self.counts: list[pl.DataFrame] = []
        self.input_rows = 0

    def probe(self, batch: pl.DataFrame, offset: int) -> np.ndarray:
        col = self.col
        a = cast_like(batch.select(col), self.groups, [col]).with_row_index(_R)
        inside = a.join(self.groups.select(col), on=col, how="semi")
        self.input_rows += inside.height
        self.counts.append(inside.group_by(col).agg(pl.len().alias("input_rows")))
        self.compact()
        return inside[_R].to_numpy().astype(np.int64)

    def compact(self) -> None:
        """The per-batch group counts summed once they are many."""
        if len(self.counts) > 64:
            self.counts = [self._summed()]

    def _summed(self) -> pl.DataFrame:
        return (
            pl.concat(self.counts)
            .group_by(self.col)
            .agg(pl.col("input_rows").sum().cast(pl.UInt32))
        )

    def finish(self) -> tuple[dict[str, Any], pl.DataFrame]:
        shared = self._summed().join(self.groups, on=self.col).sort(self.col)
        report = {
            "column": self.col,
            "shared_groups": shared.height,
            "input_rows": self.input_rows,
            "eval_rows": int(shared["eval_rows"].sum()),
        }
        return report, shared.head(self.max_rows)


class TemporalCheck:
    """Input rows later than the eval set's earliest row."""

    tally = Tally(counts=("hits",), frames=("ends",))

    def __init__(self, schema: pl.Schema, ev: pl.DataFrame, col: str) -> None:
        for dt, side in ((schema[col], "input"), (ev.schema[col], "eval set")):
            if not (dt.is_temporal() or dt.is_numeric()):
                raise DataError(
                    f"time column has dtype {dt} in the {side}, not a date/time or number",
                    column=col,
                    field="time",
                    fix="parse it first (e.g. pl.col(...).str.to_datetime()) or name another"
                    " column",
                )
        self.col, self.dtype = col, schema[col]
        self.start = ev[col].cast(self.dtype).min()
        self.ends: list[pl.DataFrame] = []  # each batch's latest time (one row)
        self.hits = 0

    def probe(self, batch: pl.DataFrame, offset: int) -> np.ndarray:
        col = self.col
        later = batch.select((pl.col(col) > self.start).fill_null(False))[col].to_numpy()
        hit = np.nonzero(later)[0].astype(np.int64)
        self.hits += int(hit.size)
        self.ends.append(batch.select(pl.col(col).max()))
        return hit

    def finish(self) -> dict[str, Any]:
        end = pl.concat(self.ends, how="vertical")[self.col].max() if self.ends else None
        return {
            "column": self.col,
            "eval_start": str(self.start),
            "input_end": str(end),
            "input_rows_after_eval_start": self.hits,
        }
