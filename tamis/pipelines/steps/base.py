"""The step-type contract: one small base class; a new step type is one file overriding `run`.

A step type turns `(input frames, params, seed) -> (output frames, report)`. The runner does the
hashing, caching, writing and progress; a step knows nothing of the store.

    class Dedup(Step):
        name = "dedup"
        Params = DedupParams            # pydantic model, extra="forbid", documented fields
        # no hand-kept version: the cache key covers this module's code and its capability's

        def run(self, inputs, params, ctx):
            out, report = dedup(inputs["input"].collect(), ...)
            return StepOutput(frames={"data": out}, report=report)
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
from pydantic import BaseModel, ConfigDict

from tamis.errors import MissingDependencyError

MAIN_OUTPUT = "data"


class StepParams(BaseModel):
    """Base for every step's params: unknown fields are errors that list the valid names."""

    model_config = ConfigDict(extra="forbid")


class NoParams(StepParams):
    pass


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


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


class Step:
    """Base class of every step type. Subclasses set the class attributes and override `run`."""

    #: the name users type after `use:`
    name: ClassVar[str] = ""
    #: a pydantic model of the params (extra="forbid", a docstring per field)
    Params: ClassVar[type[StepParams]] = NoParams
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

    def output_names(self, params: StepParams) -> tuple[str, ...]:
        """Outputs for these params; override when they depend on params (e.g. split names)."""
        return self.outputs

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

    def run(
        self,
        inputs: dict[str, Any],
        params: Any,
        ctx: StepContext,
    ) -> StepOutput:
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
        fields = []
        for fname, info in cls.Params.model_fields.items():
            default = None if info.is_required() else info.get_default(call_default_factory=True)
            fields.append(
                {
                    "name": fname,
                    "type": _type_name(info.annotation),
                    "required": info.is_required(),
                    "default": default,
                    "doc": info.description or "",
                }
            )
        return {
            "name": cls.name,
            "doc": (cls.__doc__ or "").strip().split("\n\n")[0],
            "version": cls.version,
            "code": cls.code_version(),
            "inputs": list(cls.inputs),
            "optional_inputs": list(cls.optional_inputs),
            "outputs": list(cls.outputs),
            "extra": cls.extra or None,
            "params": fields,
        }
