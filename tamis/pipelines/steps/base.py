"""The step-type contract: a step declares its params once, its kind, and its batch functions.

A step type turns `(input frames, params, seed) -> (output frames, report)`. The runner does the
hashing, caching, writing and progress; a step knows nothing of the store. Its params model is the
capability's own config (`tamis.config.Config`), so each param is declared once.

Every step declares how it can be run (`kind`), so an engine can schedule it without knowing it:

- `map` (`MapStep`): a pure function of one batch of rows (`map_batch`), after an optional
  `prepare` pass over the input (e.g. schema inference). An engine may stream the input batch by
  batch; the rows are the same as in one batch of everything.
- `keyed` (`KeyedStep`): needs all rows sharing a key together. `key` gives every row its key;
  `reduce` gets all rows of one or more keys (a bucket) with their source positions in the column
  `ROW`; an engine may hash-partition by key into buckets and reduce bucket by bucket, then puts
  the output back in source order. Keep rules choose by the lowest `ROW`, so results never depend
  on bucket boundaries. A keyed step whose `reduce` only selects rows (dedup) may say so with
  `key_columns`: an engine then moves only those columns through the shuffle and takes the kept
  rows whole from the input itself.
- `global` (`Step` overriding `run`): needs the whole input (label issues, synthesizers, audits,
  training).

The in-memory engine of today calls `run` for all three kinds; `MapStep.run` and `KeyedStep.run`
are that engine for one batch (resp. one bucket) of everything.

    class Dedup(KeyedStep[DedupConfig]):
        name = "dedup"
        Params = DedupConfig           # the capability's config, declared there once

        def key(self, batch, params, plan): ...       # u64 hash of the normalised key columns
        def reduce(self, frames, params, plan, ctx): ...  # group real values, keep lowest ROW
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

import polars as pl
from pydantic import BaseModel

from tamis.config import Config, describe_config
from tamis.errors import MissingDependencyError

MAIN_OUTPUT = "data"
#: the source position of every row, added by the engine before `KeyedStep.key`/`reduce`
ROW = "__tamis_row"
#: the table a selecting keyed step's `finish` gets: the rows `report_rows` named, every column
REPORT_ROWS = "__tamis_report_rows"

Kind = Literal["map", "keyed", "global"]
KINDS: tuple[Kind, ...] = ("map", "keyed", "global")

#: a step's params model is a `Config`; `StepParams` is the same base under its pipeline name
StepParams = Config
P = TypeVar("P", bound=BaseModel)


class NoParams(Config):
    """A step type without params."""


#: a step's inputs: one LazyFrame per input name (a list of them for list inputs)
Inputs = dict[str, Any]


@dataclass
class StepContext:
    """What the runner hands a step besides its inputs."""

    step: str
    pipeline: str
    seed: int
    #: an empty directory whose contents are kept beside the output version (fitted models...)
    artifacts_dir: Path
    #: call with a short message (and optionally completed/total) to update the progress display
    progress: Callable[..., None] = lambda *a, **k: None
    #: the directory of the pipeline YAML, for params that name files (suites, policies)
    base_dir: Path = field(default_factory=Path.cwd)

    def local_path(self, path: str | None) -> str | None:
        """A param naming a local file or directory, made absolute against `base_dir`."""
        if path is None or path.startswith("/"):
            return path
        return str((self.base_dir / path).resolve())


@dataclass
class StepOutput:
    """Frames keyed by output name (`data` is the main one) plus a JSON-able report.

    A step with several outputs (e.g. `split`) names them; each becomes its own version, addressed
    as `<step>.<output>` in a pipeline and `<pipeline>/<step>.<output>` as a ref. `tables` are large
    report tables stored as Parquet beside the main output.
    """

    frames: dict[str, pl.DataFrame | pl.LazyFrame]
    report: dict[str, Any] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)


@dataclass
class BatchResult:
    """What one batch (map) or one bucket (keyed) gives: its output rows, additive counts summed
    over all batches, and report-table rows concatenated over all batches."""

    frame: pl.DataFrame
    stats: dict[str, int | float] = field(default_factory=dict)
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)


def merge_batches(results: list[BatchResult]) -> BatchResult:
    """Concatenate batch outputs and tables, sum their counts (what an engine does per step)."""
    stats: dict[str, int | float] = {}
    tables: dict[str, list[pl.DataFrame]] = {}
    for r in results:
        for k, v in r.stats.items():
            stats[k] = stats.get(k, 0) + v
        for k, t in r.tables.items():
            tables.setdefault(k, []).append(t)
    frames = [r.frame for r in results]
    frame = pl.concat(frames, how="vertical") if frames else pl.DataFrame()
    return BatchResult(
        frame=frame,
        stats=stats,
        tables={k: pl.concat(v, how="vertical_relaxed") for k, v in tables.items()},
    )


class Step(Generic[P]):
    """Base class of every step type: a `global` step, which overrides `run`.

    Subclasses set the class attributes; map and keyed steps derive from `MapStep`/`KeyedStep`.
    """

    #: the name users type after `use:`
    name: ClassVar[str] = ""
    #: the params model: the capability's `Config` (extra="forbid", help on every field)
    Params: type[P]
    #: how an engine may run it: map, keyed or global (see the module docstring)
    kind: ClassVar[Kind] = "global"
    #: an optional manual version, kept in the key; the key follows the code anyway (`code_version`)
    version: ClassVar[int] = 1
    #: False for a step whose output is not a function of (inputs, params, seed): a DP mechanism
    #: draws its noise and sampling fresh from a secure source on every build and never stores it.
    #: The cache key stays (inputs, params, seed); the manifest's `step.deterministic` says so.
    deterministic: ClassVar[bool] = True
    #: named inputs that must be given (besides none at all for generator steps)
    inputs: ClassVar[tuple[str, ...]] = ("input",)
    #: named inputs that may be given
    optional_inputs: ClassVar[tuple[str, ...]] = ()
    #: named inputs that accept a list of versions (e.g. `against: [test, eval]`)
    list_inputs: ClassVar[tuple[str, ...]] = ()
    #: output names; `data` is the main output
    outputs: ClassVar[tuple[str, ...]] = (MAIN_OUTPUT,)
    #: importable modules the step needs, and the extra that installs them
    requires: ClassVar[tuple[str, ...]] = ()
    extra: ClassVar[str] = ""

    def output_names(self, params: P) -> tuple[str, ...]:
        """Outputs for these params; override when they depend on params (e.g. split names)."""
        return self.outputs

    def kind_for(self, params: P) -> Kind:
        """The kind for these params (e.g. `filter` with a whole SQL `query` is global)."""
        return self.kind

    def output_schema(self, schema: pl.Schema, params: P) -> pl.Schema | None:
        """The main output's schema for an input of `schema`; None when it depends on the data.

        A column whose dtype depends on the data may be declared `pl.Unknown`. The contract test
        checks every registered step's real output against this declaration.
        """
        return None

    def check_dependencies(self) -> None:
        missing = [m for m in self.requires if importlib.util.find_spec(m) is None]
        if missing:
            hint = (
                f"pip install 'tamis[{self.extra}]'"
                if self.extra
                else f"pip install {' '.join(missing)}"
            )
            raise MissingDependencyError(
                f"step type '{self.name}' needs {', '.join(missing)}, which is not installed",
                fix=hint,
            )

    def run(self, inputs: Inputs, params: P, ctx: StepContext) -> StepOutput:
        """Inputs are `pl.LazyFrame`s keyed by input name (a list of them for list inputs)."""
        raise NotImplementedError

    @classmethod
    def code_version(cls) -> str:
        """What the cache key knows of this step's code: the hash of its module's source and of
        every `tamis` module it imports (its capability), transitively, plus the manual `version`.

        Any change to code the step can run changes it, so a changed step is never served from an
        old cache entry (see `tamis.pipelines.hashing.module_code_hash`).
        """
        from tamis.pipelines.hashing import hash_json, module_code_hash

        return hash_json(
            {
                "module": cls.__module__,
                "class": cls.__qualname__,
                "source": module_code_hash(cls.__module__),
                "version": cls.version,
            }
        )[:32]

    @classmethod
    def describe(cls) -> dict[str, Any]:
        return {
            "name": cls.name,
            "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
            "kind": cls.kind,
            "version": cls.version,
            "code": cls.code_version(),
            "inputs": list(cls.inputs),
            "optional_inputs": list(cls.optional_inputs),
            "outputs": list(cls.outputs),
            "extra": cls.extra or None,
            "params": describe_config(cls.Params),
        }


class MapStep(Step[P]):
    """A step that is a pure function of one batch of rows: `map_batch`.

    `prepare` may scan the whole input first (cheaply, e.g. to infer types) and returns a plan that
    every batch sees. `finish` turns the summed counts and concatenated tables into the report.
    """

    kind: ClassVar[Kind] = "map"

    def prepare(self, source: pl.LazyFrame, params: P, ctx: StepContext) -> Any:
        return None

    def map_batch(self, batch: pl.DataFrame, params: P, plan: Any, ctx: StepContext) -> BatchResult:
        raise NotImplementedError

    def finish(self, merged: BatchResult, params: P, plan: Any, ctx: StepContext) -> dict[str, Any]:
        return dict(merged.stats)

    def output_schema(self, schema: pl.Schema, params: P) -> pl.Schema | None:
        return schema

    def run(self, inputs: Inputs, params: P, ctx: StepContext) -> StepOutput:
        source: pl.LazyFrame = inputs["input"]
        plan = self.prepare(source, params, ctx)
        result = self.map_batch(source.collect(), params, plan, ctx)
        return StepOutput(
            frames={MAIN_OUTPUT: result.frame},
            report=self.finish(result, params, plan, ctx),
            tables=result.tables,
        )


class KeyedStep(Step[P]):
    """A step that needs all rows sharing a key together: `key` per row, `reduce` per bucket.

    `reduce` gets, per input name, the rows of one bucket (any set of whole keys) with their source
    position in `ROW`, and returns output rows that keep `ROW`; the engine concatenates the buckets'
    outputs, sorts them by `ROW` and drops it. `finish` makes the report from the summed counts and
    the concatenated tables (sort them there: bucket order is arbitrary).
    """

    kind: ClassVar[Kind] = "keyed"

    def prepare(self, sources: dict[str, pl.LazyFrame], params: P, ctx: StepContext) -> Any:
        """Check columns and resolve settings once, before any bucket (no row data is kept)."""
        return None

    def key(self, batch: pl.DataFrame, input_name: str, params: P, plan: Any) -> pl.Series:
        """One key per row of `batch` (any hashable dtype; rows with equal keys meet in `reduce`)."""
        raise NotImplementedError

    def reduce(
        self, frames: dict[str, pl.DataFrame], params: P, plan: Any, ctx: StepContext
    ) -> BatchResult:
        raise NotImplementedError

    def key_columns(self, schema: pl.Schema, params: P, plan: Any) -> list[str] | None:
        """The only input columns `key` and `reduce` read, when `reduce` only selects rows; None
        (the default) when it may read or change any column.

        Returning a list promises, for a step with one input: given each row's listed columns and
        `ROW` alone, `reduce` returns some of its rows (each at most once, `ROW` and the listed
        values unchanged), optionally followed by new columns computed from them, and its tables
        need no other column (but see `report_rows`). An engine may then shuffle only these
        columns and `ROW`, and join the output rows' `ROW` and new columns back onto the input's
        rows, read again in source order: the output is every input column, then the new ones,
        the same rows and values as the whole-row path.
        """
        return None

    def report_rows(self, merged: BatchResult, params: P, plan: Any) -> list[int]:
        """For a step with `key_columns`: the source positions (`ROW`) of the few rows `finish`
        shows whole (e.g. dedup's example rows), from the buckets' merged tables. The engine that
        reduced the key columns only reads them from the input and hands them to `finish` in
        `merged.tables[REPORT_ROWS]`: `ROW` (Int64) first, then every input column."""
        return []

    def finish(self, merged: BatchResult, params: P, plan: Any, ctx: StepContext) -> dict[str, Any]:
        return dict(merged.stats)

    def run(self, inputs: Inputs, params: P, ctx: StepContext) -> StepOutput:
        sources = {k: v for k, v in inputs.items() if isinstance(v, pl.LazyFrame)}
        plan = self.prepare(sources, params, ctx)
        frames = {k: v.with_row_index(ROW).collect() for k, v in sources.items()}
        result = self.reduce(frames, params, plan, ctx)
        result.frame = result.frame.sort(ROW).drop(ROW)
        return StepOutput(
            frames={MAIN_OUTPUT: result.frame},
            report=self.finish(result, params, plan, ctx),
            tables=result.tables,
        )
