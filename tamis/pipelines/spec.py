"""The pipeline YAML spec, validated with pydantic; errors name the file, the step and the field.

    name: adult
    seed: 0
    sources:
      train: {path: data/adult.data, format: csv}
      test:  {path: data/adult.test}
    steps:
      clean: {use: normalize, input: train, params: {strip_whitespace: true}}
      dedup: {use: dedup, input: clean, params: {columns: all}}
      leak:  {use: leakage, input: dedup, against: test, params: {action: drop}}

Any key of a step other than `use`, `params`, `seed` and `description` names an input (`input`,
`against`, `real`, `synthetic`, `holdout`, ...); its value is a source name, a step name, a
`step.output` for multi-output steps, or `@REF` for a version already in the store.
"""

from __future__ import annotations

import re
from collections.abc import Container
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from tamis.errors import SpecError
from tamis.pipelines.formats import FORMATS, infer_format
from tamis.safe_yaml import safe_load_yaml

if TYPE_CHECKING:
    from tamis.pipelines.dag import PlannedStep

NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError("use letters, digits, '_' or '-', starting with a letter")
    return value


#: a pipeline or sweep name (letters, digits, '_' or '-', starting with a letter)
Name = Annotated[str, AfterValidator(_check_name)]
RESERVED_STEP_KEYS = {"use", "params", "seed", "description"}


class SourceSpec(BaseModel):
    """A file or directory read into the store as the first version of a lineage.

    CSV/TSV files are read by DuckDB's `read_csv` sniffer: delimiter, quote, header and column
    types are inferred and reported; `header`, `columns`, `delimiter`, `quote` and
    `skip_initial_space` override the inference. Parquet, JSON Lines and JSON are read by Polars.
    """

    model_config = ConfigDict(extra="forbid")
    path: str = Field(
        description="file or directory, relative to the pipeline YAML (a directory of *.parquet "
        "files is read as one table; a `save_to_disk` folder as a Hugging Face dataset)"
    )
    format: Literal["csv", "tsv", "parquet", "jsonl", "json", "hf"] | None = Field(
        default=None,
        description="inferred from the suffix when omitted: .csv .data .test .txt -> csv, "
        ".tsv .tab -> tsv, .parquet .pq or a folder of .parquet files -> parquet, .jsonl .ndjson "
        "-> jsonl, .json -> json, each optionally compressed (.gz; .zst for csv/tsv)",
    )
    header: bool | None = Field(
        default=None,
        description="CSV/TSV: whether the first line holds column names; sniffed when omitted "
        "(false when `columns` is given). A sniffed header that looks like data (a number, or "
        "the same shape as the rows below) is reported as a warning",
    )
    columns: list[str] | None = Field(
        default=None,
        description="CSV/TSV: names of the columns in file order (as many as the file has); "
        "without `header: true` the first line is read as data",
    )
    delimiter: str | None = Field(
        default=None, description="CSV/TSV: the field separator; sniffed when omitted (tab for tsv)"
    )
    quote: str | None = Field(
        default=None,
        description="CSV/TSV: the quote character, '' for none; sniffed when omitted (none for "
        "tsv, whose text may hold stray quotes)",
    )
    skip_initial_space: bool | None = Field(
        default=None,
        description="CSV/TSV: drop the spaces right after each delimiter (`39, State-gov` -> "
        "'State-gov'), as pandas' skipinitialspace=True; default true for csv, false for tsv",
    )

    @field_validator("columns")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None:
            if not value or any(not str(v).strip() for v in value):
                raise ValueError("give a non-empty name for every column")
            twice = sorted({v for v in value if value.count(v) > 1})
            if twice:
                raise ValueError(f"column names must differ: {', '.join(twice)} given twice")
        return value

    options: dict[str, Any] = Field(
        default_factory=dict,
        description="more reader arguments: for csv/tsv DuckDB read_csv parameters (e.g. "
        "sample_size, dateformat, nullstr, skip, all_varchar; the Polars names separator, "
        "has_header, quote_char are still understood), for parquet/jsonl/json Polars' reader "
        "arguments, for hf `split`",
    )


RefKind = Literal["source", "step", "store"]


@dataclass(frozen=True)
class InputRef:
    """One input reference of a step, parsed once when the YAML loads.

    `kind` is `source` (a source name), `step` (a step, or `step.output` for one output of a
    multi-output step) or `store` (`@REF`: a version already in the store, by ref, id or prefix).
    """

    text: str
    kind: RefKind
    #: the source name, the step name, or the store reference after `@`
    base: str
    #: the named output of a step (`split.train` -> `train`); None for its main output
    output: str | None = None

    @property
    def label(self) -> str:
        """The name a build gives this version: `source`, `step` or `step.output`."""
        return self.base if self.output is None else f"{self.base}.{self.output}"


def parse_ref(text: str, sources: Container[str]) -> InputRef:
    """`@REF`, a source name, `step` or `step.output` -> an `InputRef` (a source name wins)."""
    if text.startswith("@"):
        return InputRef(text, "store", text[1:])
    if text in sources:
        return InputRef(text, "source", text)
    base, dot, output = text.partition(".")
    return InputRef(text, "step", base, output if dot else None)


#: a step's inputs by name: one reference, or a list of them for list inputs
StepInputs = dict[str, InputRef | list[InputRef]]


def flat_refs(inputs: StepInputs) -> list[tuple[str, InputRef]]:
    """(input name, reference) for every reference, lists flattened, in YAML order."""
    return [
        (key, ref)
        for key, value in inputs.items()
        for ref in (value if isinstance(value, list) else [value])
    ]


class StepSpec(BaseModel):
    """One use of a step type: `use`, inputs by name, `params`, and an optional seed override."""

    model_config = ConfigDict(extra="allow")
    use: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    description: str = ""

    def named_inputs(self) -> dict[str, str | list[str]]:
        extra = self.model_extra or {}
        out: dict[str, str | list[str]] = {}
        for key, value in extra.items():
            if isinstance(value, str):
                out[key] = value
            elif isinstance(value, list) and all(isinstance(v, str) for v in value):
                out[key] = list(value)
            else:
                raise ValueError(
                    f"input '{key}' must name a source or step (a string or a list of strings),"
                    f" got {value!r}"
                )
        return out

    def input_refs(self, sources: Container[str]) -> StepInputs:
        """The named inputs parsed into `InputRef`s (see `parse_ref`)."""
        return {
            key: [parse_ref(v, sources) for v in value]
            if isinstance(value, list)
            else parse_ref(value, sources)
            for key, value in self.named_inputs().items()
        }


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    seed: int = 0
    description: str = ""
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    steps: dict[str, StepSpec] = Field(default_factory=dict)
    #: the engine a build uses unless `tamis build --engine` says otherwise
    engine: Literal["local", "ray"] = "local"
    #: with engine ray: the address of a running cluster (none: a local loopback instance)
    address: str | None = None
    #: where the YAML lives; relative paths resolve against it (set by `load_pipeline`)
    base_dir: str = "."
    file: str = "<memory>"
    _plan: dict[str, PlannedStep] | None = PrivateAttr(default=None)

    def plan(self) -> dict[str, PlannedStep]:
        """Every step checked against its step type: type, params, inputs and the outputs they
        name (done once, when the YAML loads; see `tamis.pipelines.dag.check_steps`)."""
        if self._plan is None:
            from tamis.pipelines.dag import check_steps

            self._plan = check_steps(self)
        return self._plan

    def source_format(self, name: str) -> str:
        src = self.sources[name]
        if src.format:
            return src.format
        fmt = infer_format(Path(self.base_dir) / src.path)
        if fmt:
            return fmt
        raise SpecError(
            f"cannot infer the format of '{src.path}'",
            file=self.file,
            field=f"sources.{name}.format",
            fix=f"add format: one of {', '.join(FORMATS)}",
        )

    def source_path(self, name: str) -> Path:
        return (Path(self.base_dir) / self.sources[name].path).resolve()


def _loc(err: Any) -> tuple[str | None, str]:
    loc = [str(x) for x in err.get("loc", ())]
    step = loc[1] if len(loc) > 1 and loc[0] == "steps" else None
    return step, ".".join(loc)


def parse_pipeline(data: Any, *, file: str = "<memory>", base_dir: str = ".") -> PipelineSpec:
    """Validate a loaded YAML document; the first problem becomes a SpecError with its location."""
    if not isinstance(data, dict):
        raise SpecError("a pipeline must be a YAML mapping with name, sources and steps", file=file)
    try:
        spec = PipelineSpec.model_validate({**data, "base_dir": base_dir, "file": file})
    except ValidationError as exc:
        err = exc.errors()[0]
        step_name, field = _loc(err)
        fix = None
        if err.get("type") == "extra_forbidden":
            fix = "valid top-level keys: name, seed, description, sources, steps"
            if field.startswith("sources."):
                fix = f"valid source keys: {', '.join(SourceSpec.model_fields)}"
        elif err.get("type") == "literal_error":
            fix = f"valid formats: {', '.join(FORMATS)}"
        raise SpecError(err["msg"], file=file, step=step_name, field=field, fix=fix) from None
    for step_name, step in spec.steps.items():
        if not NAME_RE.match(step_name):
            raise SpecError("step names use letters, digits, '_' or '-'", file=file, step=step_name)
        if step_name in spec.sources:
            raise SpecError(
                "a step cannot share its name with a source",
                file=file,
                step=step_name,
                fix="rename the step or the source",
            )
        try:
            step.named_inputs()
        except ValueError as exc:
            raise SpecError(str(exc), file=file, step=step_name) from None
    spec.plan()
    return spec


def load_pipeline(path: str | Path) -> PipelineSpec:
    path = Path(path)
    if not path.exists():
        raise SpecError("pipeline file not found", file=str(path), fix="check the path")
    data = safe_load_yaml(path.read_text(), file=str(path))
    return parse_pipeline(data, file=str(path), base_dir=str(path.parent.resolve()))
