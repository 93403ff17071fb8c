"""The runner: executes a pipeline's DAG in dependency order, caching every step in the store.

Cache key of a step = hash(input version ids, step type, step code, canonical params, seed), where
the step code is the hash of the step's module source and every `tamis` module it imports
(`Step.code_version`): a change to a step or its capability never hits an old cache entry. A source
import's id covers the file's content and the reader's code (`tamis/pipelines/sources.py` and what
it imports).
Each output's version id is derived from that key, so the same inputs, params and seed give the
same id, and a rebuild of an unchanged pipeline only re-checks keys. A step that raises leaves no
version behind (the store writes atomically); the next build resumes at that step.
"""

from __future__ import annotations

import shutil
import time
import uuid
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from tamis.errors import SpecError, StepError, TamisError
from tamis.pipelines.dag import topological, validate_params, with_ancestors
from tamis.pipelines.hashing import hash_json, module_code_hash
from tamis.pipelines.progress import BuildProgress, progress_message
from tamis.pipelines.registry import get_step_type
from tamis.pipelines.sources import (
    READER_VERSION,
    load_source,
    source_fingerprint,
    source_settings,
    warn_stderr,
)
from tamis.pipelines.spec import PipelineSpec, load_pipeline
from tamis.pipelines.steps.base import MAIN_OUTPUT, Step, StepContext, StepOutput, StepParams
from tamis.pipelines.store import Store, now


@dataclass
class StepRecord:
    name: str
    status: str  # "cached" | "built" | "rebuilt"
    versions: dict[str, str]
    rows: dict[str, int]
    seconds: float
    warnings: list[str] = field(default_factory=list)


@dataclass
class BuildResult:
    pipeline: str
    run_id: str
    #: step name (or `step.output`, or source name) -> manifest of that version
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    #: warnings about the sources (e.g. a header row that looks like data)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "seconds": round(self.seconds, 3),
            "steps": [
                {
                    "step": s.name,
                    "status": s.status,
                    "versions": s.versions,
                    "rows": s.rows,
                    "seconds": round(s.seconds, 3),
                    **({"warnings": s.warnings} if s.warnings else {}),
                }
                for s in self.steps
            ],
            **({"warnings": self.warnings} if self.warnings else {}),
        }


def build(
    spec_or_path: PipelineSpec | str | Path,
    store: Store | None = None,
    *,
    force: bool | Sequence[str] = False,
    targets: Sequence[str] | None = None,
    progress: bool = False,
) -> BuildResult:
    """Build a pipeline into the store; returns the versions it made or found in the cache."""
    spec = spec_or_path if isinstance(spec_or_path, PipelineSpec) else load_pipeline(spec_or_path)
    store = store or Store()
    order = topological(spec)
    forced: set[str] = set(order) if force is True else set(force or [])
    for name in [*forced, *(targets or [])]:
        if name not in spec.steps:
            raise SpecError(
                f"no step named '{name}'", file=spec.file, fix=f"steps: {', '.join(spec.steps)}"
            )
    if targets:
        order = with_ancestors(spec, order, set(targets))
    result = BuildResult(pipeline=spec.name, run_id=uuid.uuid4().hex[:16])
    started = time.perf_counter()
    run_info = {"id": result.run_id, "kind": "build", "name": spec.name, "started_at": now()}
    ids: dict[str, str] = {}
    display = BuildProgress(progress, pipeline=spec.name)
    pending = _Pending(store)
    try:
        with display.run():
            for source in spec.sources:
                ids[source] = _import_source(spec, source, store, result, pending)
            for name in order:
                record = _run_step(spec, name, store, ids, name in forced, display, result, pending)
                result.steps.append(record)
    except BaseException as exc:
        pending.flush(
            {
                **run_info,
                "finished_at": now(),
                "status": "failed",
                "info": {"error": str(exc)[:2000]},
            }
        )
        raise
    result.seconds = time.perf_counter() - started
    pending.flush({**run_info, "finished_at": now(), "status": "ok", "info": result.to_json()})
    return result


class _Pending:
    """Catalog writes for cached versions (index rows, refs), batched into one connection."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.manifests: list[dict[str, Any]] = []
        self.refs: list[tuple[str, str]] = []

    def flush(self, run: dict[str, Any] | None = None) -> None:
        if not self.manifests and run is None:
            return
        catalog = self.store.catalog
        with catalog.session() as con:
            missing = set(catalog.missing_versions([m["id"] for m in self.manifests]))
            for manifest in self.manifests:
                if manifest["id"] in missing:
                    catalog.add_version(manifest)
            when = now()
            con.execute("BEGIN")  # one commit for all refs: each autocommit costs ~15 ms
            if run is not None:  # a build's refs move together at its end (refs.log first)
                catalog.set_refs(self.refs, when)
                catalog.record_run(run)
            con.execute("COMMIT")
        self.manifests.clear()
        if run is not None:
            self.refs.clear()


def _import_source(
    spec: PipelineSpec, name: str, store: Store, result: BuildResult, pending: _Pending
) -> str:
    path = spec.source_path(name)
    fmt = spec.source_format(name)
    src = spec.sources[name]
    if not path.exists():
        raise SpecError(
            f"source not found: {path}",
            file=spec.file,
            field=f"sources.{name}.path",
            fix="paths are relative to the pipeline YAML",
        )
    fingerprint = source_fingerprint(path, store.catalog)
    params = {
        "format": fmt,
        "options": src.options,
        **source_settings(src),
        "reader": reader_version(),
    }
    version_id = hash_json({"source": fingerprint, **params})
    ref = f"{spec.name}/{name}"
    if not store.set_aside_damaged([version_id]) and store.has_version(version_id):
        manifest = store.manifest_by_id(version_id)
        pending.manifests.append(manifest)
    else:
        pending.flush()
        read = load_source(spec, name)
        manifest = store.write_version(
            version_id=version_id,
            name=ref,
            frame=read.frame,
            parents=[],
            step={
                "name": name,
                "type": "source",
                "params": {"path": str(path), **params},
                "version": READER_VERSION,
                "code": params["reader"],
            },
            seed=None,
            pipeline=spec.name,
            report={"source_sha256": fingerprint, **read.report()},
            cache_key=version_id,
            run_id=result.run_id,
        )
    pending.refs.append((ref, version_id))
    result.versions[name] = manifest
    source_warnings = (manifest.get("report") or {}).get("warnings") or []
    result.warnings.extend(f"source '{name}': {w}" for w in source_warnings)
    warn_stderr(name, source_warnings)
    return version_id


def reader_version() -> str:
    """The source reader's code: its manual version and the hash of its module's source."""
    code = module_code_hash("tamis.pipelines.sources")[:32]
    return f"{READER_VERSION}-{code}"


def _resolve_input(
    spec: PipelineSpec, ref: str, ids: dict[str, str], store: Store, step: str
) -> str:
    if ref.startswith("@"):
        return store.resolve(ref[1:])
    if ref in ids:
        return ids[ref]
    base = ref.split(".", 1)[0]
    outputs = sorted(k.split(".", 1)[1] for k in ids if k.startswith(base + "."))
    raise SpecError(
        f"input '{ref}' is not an output of step '{base}'",
        file=spec.file,
        step=step,
        fix=f"name one of its outputs: {', '.join(base + '.' + o for o in outputs)}",
    )


def _run_step(
    spec: PipelineSpec,
    name: str,
    store: Store,
    ids: dict[str, str],
    forced: bool,
    display: BuildProgress,
    result: BuildResult,
    pending: _Pending,
) -> StepRecord:
    step_spec = spec.steps[name]
    step_type = get_step_type(step_spec.use, file=spec.file, step=name)
    params = validate_params(step_type, step_spec.params, file=spec.file, step=name)
    named = step_spec.named_inputs()
    allowed = set(step_type.inputs) | set(step_type.optional_inputs)
    for key in named:
        if key not in allowed:
            raise SpecError(
                f"step type '{step_type.name}' takes no input '{key}'",
                file=spec.file,
                step=name,
                fix=f"its inputs: {', '.join(sorted(allowed)) or '(none)'}",
            )
    for key in step_type.inputs:
        if key not in named:
            raise SpecError(
                f"missing input '{key}'",
                file=spec.file,
                step=name,
                fix=f"add `{key}: <source or step name>`",
            )
    input_ids: dict[str, str | list[str]] = {}
    for key, value in named.items():
        if isinstance(value, list):
            if key not in step_type.list_inputs:
                raise SpecError(
                    f"input '{key}' takes one name, not a list", file=spec.file, step=name
                )
            input_ids[key] = [_resolve_input(spec, v, ids, store, name) for v in value]
        else:
            resolved = _resolve_input(spec, value, ids, store, name)
            input_ids[key] = [resolved] if key in step_type.list_inputs else resolved
    seed = step_spec.seed if step_spec.seed is not None else spec.seed
    canonical = params.model_dump(mode="json")
    code = step_type.code_version()
    key = hash_json(
        {
            "type": step_type.name,
            "code": code,
            "params": canonical,
            "seed": seed,
            "inputs": input_ids,
        }
    )
    outputs = step_type().output_names(params)
    out_ids = {out: hash_json({"key": key, "output": out}) for out in outputs}
    task = display.start(name, step_type.name)
    t0 = time.perf_counter()
    repairs = store.set_aside_damaged(out_ids.values())  # cheap invariants of a cache hit
    cached = all(store.has_version(v) for v in out_ids.values())
    warnings: list[str] = [
        f"version {v[:12]} is damaged ({why}): set aside in {store.damaged_dir}, repairing it"
        for v, why in repairs.items()
    ]
    if cached and not forced:
        manifests = {out: store.manifest_by_id(v) for out, v in out_ids.items()}
        pending.manifests.extend(manifests.values())
        status = "cached"
    else:
        had_old = any(store.has_version(v) for v in out_ids.values())
        pending.flush()
        display.update(task, f"{step_type.name}: running")
        step = step_type()
        step.check_dependencies()
        artifacts = store.tmp_dir / f"artifacts.{key[:16]}.{uuid.uuid4().hex[:8]}"
        artifacts.mkdir(parents=True, exist_ok=True)
        ctx = StepContext(
            step=name,
            pipeline=spec.name,
            seed=seed,
            artifacts_dir=artifacts,
            progress=lambda msg, *a, **k: display.update(
                task, f"{step_type.name}: {progress_message(msg, *a, **k)}"
            ),
            base_dir=Path(spec.base_dir),
        )
        inputs = {
            k: ([store.scan(i) for i in v] if isinstance(v, list) else store.scan(v))
            for k, v in input_ids.items()
        }
        try:
            output = _call(step, inputs, params, ctx, in_build=True)
            parents = [
                {"id": i, "role": k}
                for k, v in input_ids.items()
                for i in (v if isinstance(v, list) else [v])
            ]
            manifests = {}
            for out in outputs:
                ref = f"{spec.name}/{name}" + ("" if out == MAIN_OUTPUT else f".{out}")
                manifests[out] = store.write_version(
                    version_id=out_ids[out],
                    name=ref,
                    frame=output.frames[out],
                    parents=parents,
                    step={
                        "name": name,
                        "type": step_type.name,
                        "params": canonical,
                        "version": step_type.version,
                        "code": code,
                        "output": out,
                        "deterministic": step_type.deterministic,
                    },
                    seed=seed,
                    report=output.report,
                    tables=output.tables,
                    artifacts=artifacts if out == outputs[0] else None,
                    pipeline=spec.name,
                    cache_key=key,
                    run_id=result.run_id,
                    replace=forced,
                )
                if "replaced" in manifests[out]:
                    why = (
                        "the step is not deterministic"
                        if not step_type.deterministic
                        else "the step should be deterministic for a fixed seed but is not"
                    )
                    warnings.append(
                        f"output '{out}' differs from the stored one under the same id "
                        f"{out_ids[out][:12]} ({why}); the previous rows are kept in "
                        f"{manifests[out]['replaced']['kept_in']}"
                    )
        finally:
            shutil.rmtree(artifacts, ignore_errors=True)
        status = "rebuilt" if had_old else "built"
    rows = {}
    versions = {}
    for out, manifest in manifests.items():
        label = name if out == MAIN_OUTPUT else f"{name}.{out}"
        pending.refs.append((f"{spec.name}/{label}", manifest["id"]))
        ids[label] = manifest["id"]
        result.versions[label] = manifest
        rows[label] = int(manifest["rows"])
        versions[label] = manifest["id"]
    seconds = time.perf_counter() - t0
    summary = ", ".join(f"{r:,} rows" for r in rows.values())
    display.update(task, f"{step_type.name}: {status}, {summary}", done=True)
    # the step's own warnings (report["warnings"]: null labels dropped, a weak model...), cached too
    step_report = manifests[outputs[0]].get("report") or {}
    warnings = [str(w) for w in step_report.get("warnings") or []] + warnings
    return StepRecord(name, status, versions, rows, seconds, warnings)


def _call(
    step: Step,
    inputs: dict[str, Any],
    params: StepParams,
    ctx: StepContext,
    *,
    in_build: bool = False,
) -> StepOutput:
    """Run a step; in a build, a Python warning that the step also put in `report["warnings"]` is
    not shown again (the build prints the report's warnings once, as `warning: STEP: ...`)."""
    caught: list[warnings.WarningMessage] = []
    reported: list[str] = []
    try:
        with warnings.catch_warnings(record=in_build) as record:
            if in_build:
                warnings.simplefilter("always")
                caught = record or []
            output = step.run(inputs, params, ctx)
        reported = [str(w) for w in output.report.get("warnings") or []]
    except TamisError as exc:
        # capabilities name their step type by default (`step="label_issues"`): the user's step
        # name is the one the pipeline knows
        if exc.step is None or (exc.step == step.name and exc.step != ctx.step):
            exc.step = ctx.step
            exc.args = (exc.render(),)
        raise
    finally:
        for w in caught:
            if not any(str(w.message) in r or r in str(w.message) for r in reported):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    missing = [o for o in step.output_names(params) if o not in output.frames]
    if missing:
        raise StepError(f"step type '{step.name}' returned no output {missing}", step=ctx.step)
    return output


def run_step(
    step_type_name: str,
    inputs: dict[str, pl.DataFrame | list[pl.DataFrame]],
    params: dict[str, Any] | None = None,
    seed: int = 0,
    artifacts_dir: Path | None = None,
) -> StepOutput:
    """Run one step type on in-memory frames, without a store (for tests and notebooks)."""
    step_type = get_step_type(step_type_name)
    parsed = validate_params(step_type, params or {}, file="<python>", step=step_type_name)
    lazy = {
        k: ([f.lazy() for f in v] if isinstance(v, list) else v.lazy()) for k, v in inputs.items()
    }
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ctx = StepContext(
            step=step_type_name,
            pipeline="<python>",
            seed=seed,
            artifacts_dir=artifacts_dir or Path(tmp),
        )
        step = step_type()
        step.check_dependencies()
        output = _call(step, lazy, parsed, ctx)
        output.frames = {
            k: (v.collect() if isinstance(v, pl.LazyFrame) else v) for k, v in output.frames.items()
        }
        return output
