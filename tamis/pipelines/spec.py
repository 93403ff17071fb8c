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
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from tamis.errors import SpecError

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "hf")
SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".data": "csv",
    ".test": "csv",
    ".txt": "csv",
}
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def _check_name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError("use letters, digits, '_' or '-', starting with a letter")
    return value


#: a pipeline or sweep name (letters, digits, '_' or '-', starting with a letter)
Name = Annotated[str, AfterValidator(_check_name)]
RESERVED_STEP_KEYS = {"use", "params", "seed", "description"}


class SourceSpec(BaseModel):
    """A file or directory read into the store as the first version of a lineage."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(description="file or directory, relative to the pipeline YAML")
    format: Literal["csv", "tsv", "parquet", "jsonl", "json", "hf"] | None = Field(
        default=None, description="inferred from the suffix when omitted"
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="passed to the Polars reader (e.g. separator, has_header)"
    )


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


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    seed: int = 0
    description: str = ""
    sources: dict[str, SourceSpec] = Field(default_factory=dict)
    steps: dict[str, StepSpec] = Field(default_factory=dict)
    #: where the YAML lives; relative paths resolve against it (set by `load_pipeline`)
    base_dir: str = "."
    file: str = "<memory>"

    def source_format(self, name: str) -> str:
        src = self.sources[name]
        if src.format:
            return src.format
        path = Path(src.path)
        if path.suffix.lower() in SUFFIX_FORMATS:
            return SUFFIX_FORMATS[path.suffix.lower()]
        if (Path(self.base_dir) / path / "dataset_info.json").exists() or (
            Path(self.base_dir) / path / "dataset_dict.json"
        ).exists():
            return "hf"
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
                fix = "valid source keys: path, format, options"
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
    return spec


def load_pipeline(path: str | Path) -> PipelineSpec:
    path = Path(path)
    if not path.exists():
        raise SpecError("pipeline file not found", file=str(path), fix="check the path")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"not valid YAML{where}: {exc}", file=str(path)) from None
    return parse_pipeline(data, file=str(path), base_dir=str(path.parent.resolve()))
