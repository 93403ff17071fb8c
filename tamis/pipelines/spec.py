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
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from tamis.errors import SpecError
from tamis.pipelines.formats import DATA_SUFFIXES

FORMATS = ("csv", "tsv", "parquet", "jsonl", "json", "hf")
SUFFIX_FORMATS = {
    **DATA_SUFFIXES,
    ".tab": "tsv",
    ".data": "csv",
    ".test": "csv",
    ".txt": "csv",
}
#: compression suffixes a reader decompresses itself (DuckDB: gzip, zstd; Polars: gzip)
COMPRESSION_SUFFIXES = {".gz": ("csv", "tsv", "jsonl", "json"), ".zst": ("csv", "tsv")}


def infer_format(path: Path) -> str | None:
    """A source's format from its suffix (`.csv.gz` -> csv) or folder content, or None.

    A folder holding `dataset_info.json`/`dataset_dict.json` is a Hugging Face `save_to_disk`
    dataset; a folder holding `.parquet` files (a partitioned output) is parquet.
    """
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in COMPRESSION_SUFFIXES:
        allowed = COMPRESSION_SUFFIXES[suffixes[-1]]
        fmt = SUFFIX_FORMATS.get(suffixes[-2]) if len(suffixes) > 1 else None
        return fmt if fmt in allowed else None
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            return "hf"
        if any(p.is_file() for p in path.rglob("*.parquet")):
            return "parquet"
        return None
    return SUFFIX_FORMATS.get(path.suffix.lower())


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
    return spec


#: a YAML document may hold at most this many nodes once its aliases are expanded, and at most
#: this many aliases: a 472-byte "billion laughs" document otherwise expands to hundreds of MB
MAX_YAML_NODES = 200_000
MAX_YAML_ALIASES = 10_000


class _YamlLimit(yaml.YAMLError):
    """A YAML document refused by the loader (duplicate key, alias bomb): message for the user."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate mapping keys and alias bombs.

    Duplicate keys (two steps with one name: the last silently won) name both lines. Aliases are
    counted as they are composed, and the document's size with every alias expanded is computed
    on the node graph (memoised, so the check itself never expands anything).
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                event = self.peek_event()
                raise _YamlLimit(
                    f"more than {MAX_YAML_ALIASES:,} aliases (line {event.start_mark.line + 1})",
                    "write the document out without so many `*alias` references",
                )
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_nodes(node)
        return node


def _check_nodes(root: Any) -> None:
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, path: str) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _YamlLimit(
                f"a recursive alias at {path or 'the top'} (line {node.start_mark.line + 1})",
                "an anchor cannot contain an alias to itself",
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if (
                    isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag != "tag:yaml.org,2002:merge"
                ):
                    name = key_node.value
                    if name in seen:
                        first = seen[name].start_mark.line + 1
                        second = key_node.start_mark.line + 1
                        what = {"steps": "step", "sources": "source"}.get(path)
                        where = f"{path}.{name}" if path else name
                        head = (
                            f"{what} '{name}' is defined twice"
                            if what
                            else (f"duplicate key '{name}' at {where}")
                        )
                        raise _YamlLimit(
                            f"{head}: line {first} and line {second} (the second would "
                            "silently replace the first)",
                            "give each step/source/key a unique name, or remove one of them",
                        )
                    seen[name] = key_node
                child = f"{path}.{key_node.value}" if path else str(key_node.value)
                total += size(key_node, child) + size(value_node, child)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += size(item, f"{path}[{i}]")
                if total > MAX_YAML_NODES:
                    break
        active.discard(key)
        sizes[key] = total
        if total > MAX_YAML_NODES:
            raise _YamlLimit(
                f"the document expands to more than {MAX_YAML_NODES:,} nodes once its aliases "
                f"are expanded (at {path or 'the top'}, line {node.start_mark.line + 1}): refused "
                "as a likely alias bomb",
                "write the document out without nested `*alias` references",
            )
        return total

    if root is not None:
        size(root, "")


def safe_load_yaml(text: str, *, file: str) -> Any:
    """yaml.safe_load with duplicate-key and alias-bomb checks; problems become SpecError."""
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    except _YamlLimit as exc:
        raise SpecError(exc.message, file=file, fix=exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"not valid YAML{where}: {exc}", file=file) from None
    except RecursionError:
        raise SpecError(
            "the YAML document nests too deeply", file=file, fix="flatten the document"
        ) from None


def load_pipeline(path: str | Path) -> PipelineSpec:
    path = Path(path)
    if not path.exists():
        raise SpecError("pipeline file not found", file=str(path), fix="check the path")
    data = safe_load_yaml(path.read_text(), file=str(path))
    return parse_pipeline(data, file=str(path), base_dir=str(path.parent.resolve()))
