"""The runner: executes a pipeline's DAG in dependency order, caching every step in the store.

Cache key of a step = hash(input version ids, step type, step code, canonical params, seed), where
the step code is the hash of the step's module source and every `tamis` module it imports
(`Step.code_version`): a change to a step or its capability never hits an old cache entry. A source
import's id covers the file's content and the reader's code (`tamis/pipelines/sources/` and what
it imports).
Each output's version id is derived from that key, so the same inputs, params and seed give the
same id, and a rebuild of an unchanged pipeline only re-checks keys. A step that raises leaves no
version behind (the store writes atomically); the next build resumes at that step.

Every step runs through the bounded local engine (`engines.local.BoundedEngine`) within the build's
memory limit: map steps stream batch by batch, keyed steps spill buckets, and a global step whose
inputs (`Store.estimate_bytes`) cannot fit is refused before it starts. The engine writes the main
output as Parquet parts into a directory from `Store.engine_tmp`, handed to `Store.write_version`
(moved in, not rewritten); spill and parts directories are removed when the step ends, and a
killed build leaves them as tmp litter the store clears. Sources are streamed into parts too.
"""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.errors import SpecError
from tamis.pipelines.build_record import BuildResult, PendingIndex, StepRecord
from tamis.pipelines.call import EngineOutput, disk_full, engine_run
from tamis.pipelines.call import call_step as _call  # tests replace runner._call
from tamis.pipelines.call import run_step as run_step
from tamis.pipelines.dag import PlannedStep, topological, with_ancestors
from tamis.pipelines.engines import Engine
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import default_memory_limit
from tamis.pipelines.hashing import hash_json
from tamis.pipelines.progress import BuildProgress, progress_message
from tamis.pipelines.sources import (
    READER_VERSION,
    import_source_parts,
    source_exists,
    source_fingerprint,
    source_params,
    warn_stderr,
)
from tamis.pipelines.spec import InputRef, PipelineSpec, load_pipeline
from tamis.pipelines.steps.base import MAIN_OUTPUT, StepContext, StepOutput
from tamis.pipelines.store import Manifest, RunRecord, Store, now


def build(
    spec_or_path: PipelineSpec | str | Path,
    store: Store | None = None,
    *,
    force: bool | Sequence[str] = False,
    targets: Sequence[str] | None = None,
    progress: bool = False,
    memory_limit: int | None = None,
    engine: Engine | str | None = None,
    address: str | None = None,
) -> BuildResult:
    """Build a pipeline into the store; returns the versions it made or found in the cache.

    `memory_limit` (bytes; default `default_memory_limit()`, half of the machine's memory) bounds
    what the engine holds: batches and buckets are sized from it (parts never are). `engine`:
    `"local"` (the bounded local engine, the default), `"ray"` (a local loopback Ray instance
    started and stopped here, or the cluster at `address`), None (the pipeline's `engine:`), or
    an engine set up by the caller (tests and benchmarks: small batches to force many)."""
    spec = spec_or_path if isinstance(spec_or_path, PipelineSpec) else load_pipeline(spec_or_path)
    store = store or Store()
    limit = memory_limit or default_memory_limit()
    name = engine if isinstance(engine, str) or engine is None else None
    if name is None and engine is None:
        name = spec.engine
    if name == "ray":
        from tamis.pipelines.engines.ray_engine import ray_engine_session

        with ray_engine_session(address or spec.address, limit, store.tmp_dir) as ray_engine:
            return _build(spec, store, force, targets, progress, ray_engine)
    if name not in (None, "local"):
        raise SpecError(
            f"unknown engine {name!r}", file=spec.file, field="engine", fix="use local or ray"
        )
    chosen = engine if engine is not None and not isinstance(engine, str) else None
    return _build(
        spec,
        store,
        force,
        targets,
        progress,
        chosen or BoundedEngine(memory_limit=limit, spill_root=store.tmp_dir),
    )


def _build(
    spec: PipelineSpec,
    store: Store,
    force: bool | Sequence[str],
    targets: Sequence[str] | None,
    progress: bool,
    engine: Engine,
) -> BuildResult:
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
    run = RunRecord(id=result.run_id, kind="build", name=spec.name, started_at=now())
    job = _Build(spec, store, result, BuildProgress(progress, pipeline=spec.name), engine)
    try:
        with job.display.run():
            for source in spec.sources:
                job.import_source(source)
            for name in order:
                result.steps.append(job.run_step(spec.plan()[name], name in forced))
    except BaseException as exc:
        result.engine = engine.stats.to_json()
        run.update({"finished_at": now(), "status": "failed", "info": {"error": str(exc)[:2000]}})
        job.pending.flush(run)
        raise
    result.seconds = time.perf_counter() - started
    result.engine = engine.stats.to_json()
    run.update({"finished_at": now(), "status": "ok", "info": result.to_json()})
    job.pending.flush(run)
    return result


@dataclass
class _Build:
    """One build in progress: the version id of every source and step output made so far."""

    spec: PipelineSpec
    store: Store
    result: BuildResult
    display: BuildProgress
    engine: Engine
    #: label (`source`, `step`, `step.output`) -> version id
    ids: dict[str, str] = field(default_factory=dict)
    pending: PendingIndex = field(init=False)

    def __post_init__(self) -> None:
        self.pending = PendingIndex(self.store)

    # ------------------------------------------------------------------ sources
    def import_source(self, name: str) -> None:
        spec, store = self.spec, self.store
        path = spec.source_path(name)
        spec.source_format(name)  # a format it cannot infer is said before a missing file
        if not source_exists(path):
            raise SpecError(
                f"source not found: {path}",
                file=spec.file,
                field=f"sources.{name}.path",
                fix="paths are relative to the pipeline YAML",
            )
        fingerprint = source_fingerprint(path, store.catalog)
        params = source_params(spec, name)
        version_id = hash_json({"source": fingerprint, **params})
        if not store.set_aside_damaged([version_id]) and store.has_version(version_id):
            manifest = store.manifest_by_id(version_id)
            self.pending.manifests.append(manifest)
        else:
            self.pending.flush()
            manifest = self._import(name, version_id, fingerprint, params)
        self._record(name, manifest)
        source_warnings = (manifest.get("report") or {}).get("warnings") or []
        self.result.warnings.extend(f"source '{name}': {w}" for w in source_warnings)
        warn_stderr(name, source_warnings)

    def _import(
        self, name: str, version_id: str, fingerprint: str, params: dict[str, Any]
    ) -> Manifest:
        """Stream a source into parts (never whole in memory) and write its version."""
        spec, store = self.spec, self.store
        task = self.display.start(name, "source")
        work = store.engine_tmp(f"source.{version_id[:16]}")
        try:
            local = self.engine.local  # sources stream on this machine, whatever the engine
            local.use(
                work / "spill",
                lambda msg, *a, **k: self.display.update(
                    task, f"source: {progress_message(msg, *a, **k)}"
                ),
            )
            with disk_full(store, f"{spec.name}/{name}"):
                read = import_source_parts(spec, name, work / "out", local)
            manifest = store.write_version(
                version_id=version_id,
                name=f"{spec.name}/{name}",
                frame=None,
                parts_dir=work / "out",
                parts=read.parts,
                parents=[],
                step={
                    "name": name,
                    "type": "source",
                    "params": {"path": str(spec.source_path(name)), **params},
                    "version": READER_VERSION,
                    "code": params["reader"],
                },
                seed=None,
                pipeline=spec.name,
                report={"source_sha256": fingerprint, **read.report()},
                cache_key=version_id,
                run_id=self.result.run_id,
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        self.display.update(task, f"source: {manifest['rows']:,} rows", done=True)
        return manifest

    def _record(self, label: str, manifest: Manifest) -> None:
        """A version made or found under `label`: its ref moves at the build's end."""
        self.pending.refs.append((f"{self.spec.name}/{label}", manifest["id"]))
        self.ids[label] = manifest["id"]
        self.result.versions[label] = manifest

    # ------------------------------------------------------------------ steps
    def run_step(self, planned: PlannedStep, forced: bool) -> StepRecord:
        """Resolve inputs, look up the cache, else run the step and write its outputs; record."""
        key, input_ids = self.cache_key(planned)
        out_ids = {out: hash_json({"key": key, "output": out}) for out in planned.outputs}
        task = self.display.start(planned.name, planned.step_type.name)
        t0 = time.perf_counter()
        warnings = self._set_aside_damaged(out_ids)
        if all(self.store.has_version(v) for v in out_ids.values()) and not forced:
            manifests = {out: self.store.manifest_by_id(v) for out, v in out_ids.items()}
            self.pending.manifests.extend(manifests.values())
            status = "cached"
        else:
            had_old = any(self.store.has_version(v) for v in out_ids.values())
            self.pending.flush()
            self.display.update(task, f"{planned.step_type.name}: running")
            manifests = self._execute(planned, key, input_ids, out_ids, forced, task, warnings)
            status = "rebuilt" if had_old else "built"
        return self._finish(planned, status, manifests, warnings, task, t0)

    def resolve(self, ref: InputRef) -> str:
        """The version id of one input: a store ref, or a source or step output of this build."""
        if ref.kind == "store":
            return self.store.resolve(ref.base)
        return self.ids[ref.label]

    def cache_key(self, planned: PlannedStep) -> tuple[str, dict[str, str | list[str]]]:
        """hash(input version ids, step type, step code, canonical params, seed), and the ids."""
        input_ids: dict[str, str | list[str]] = {}
        for key, value in planned.inputs.items():
            if isinstance(value, list):
                input_ids[key] = [self.resolve(v) for v in value]
            else:
                resolved = self.resolve(value)
                input_ids[key] = [resolved] if key in planned.step_type.list_inputs else resolved
        key = hash_json(
            {
                "type": planned.step_type.name,
                "code": planned.step_type.code_version(),
                "params": planned.params.model_dump(mode="json"),
                "seed": self.seed(planned),
                "inputs": input_ids,
            }
        )
        return key, input_ids

    def seed(self, planned: PlannedStep) -> int:
        return planned.spec.seed if planned.spec.seed is not None else self.spec.seed

    def _set_aside_damaged(self, out_ids: dict[str, str]) -> list[str]:
        """Cheap invariants of a cache hit: damaged outputs are set aside and rebuilt."""
        repairs = self.store.set_aside_damaged(out_ids.values())
        return [
            f"version {v[:12]} is damaged ({why}): set aside in {self.store.damaged_dir}, "
            "repairing it"
            for v, why in repairs.items()
        ]

    def _execute(
        self,
        planned: PlannedStep,
        key: str,
        input_ids: dict[str, str | list[str]],
        out_ids: dict[str, str],
        forced: bool,
        task: Any,
        warnings: list[str],
    ) -> dict[str, Manifest]:
        """Run the step on its inputs and write every output as a version."""
        step_type, store = planned.step_type, self.store
        step = step_type()
        step.check_dependencies()
        # artifacts, spill and parts in one tmp dir named with this process's pid: a killed
        # build's dir is cleared by the next writer's housekeeping
        work = store.engine_tmp(f"step.{key[:16]}")
        artifacts = work / "artifacts"
        artifacts.mkdir()
        ctx = StepContext(
            step=planned.name,
            pipeline=self.spec.name,
            seed=self.seed(planned),
            artifacts_dir=artifacts,
            progress=lambda msg, *a, **k: self.display.update(
                task, f"{step_type.name}: {progress_message(msg, *a, **k)}"
            ),
            base_dir=Path(self.spec.base_dir),
        )
        inputs = {
            k: ([store.scan(i) for i in v] if isinstance(v, list) else store.scan(v))
            for k, v in input_ids.items()
        }
        try:
            with disk_full(store, f"{self.spec.name}/{planned.name}"):
                output = _call(
                    step,
                    inputs,
                    planned.params,
                    ctx,
                    in_build=True,
                    engine=engine_run(self.engine, store, ctx, work, input_ids),
                )
            parents = [
                {"id": i, "role": k}
                for k, v in input_ids.items()
                for i in (v if isinstance(v, list) else [v])
            ]
            return {
                out: self._write_output(
                    planned, out, output, out_ids[out], key, parents, artifacts, forced, warnings
                )
                for out in planned.outputs
            }
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _write_output(
        self,
        planned: PlannedStep,
        out: str,
        output: StepOutput,
        version_id: str,
        key: str,
        parents: list[dict[str, str]],
        artifacts: Path,
        forced: bool,
        warnings: list[str],
    ) -> Manifest:
        step_type = planned.step_type
        as_parts = isinstance(output, EngineOutput) and out not in output.frames
        manifest = self.store.write_version(
            version_id=version_id,
            name=f"{self.spec.name}/{_label(planned.name, out)}",
            frame=None if as_parts else output.frames[out],
            parts_dir=output.out if isinstance(output, EngineOutput) and as_parts else None,
            parts=output.parts if isinstance(output, EngineOutput) and as_parts else None,
            parents=parents,
            step={
                "name": planned.name,
                "type": step_type.name,
                "params": planned.params.model_dump(mode="json"),
                "version": step_type.version,
                "code": step_type.code_version(),
                "output": out,
                "deterministic": step_type.deterministic,
            },
            seed=self.seed(planned),
            report=output.report,
            tables=output.tables,
            artifacts=artifacts if out == planned.outputs[0] else None,
            pipeline=self.spec.name,
            cache_key=key,
            run_id=self.result.run_id,
            replace=forced,
        )
        if "replaced" in manifest:
            why = (
                "the step is not deterministic"
                if not step_type.deterministic
                else "the step should be deterministic for a fixed seed but is not"
            )
            warnings.append(
                f"output '{out}' differs from the stored one under the same id "
                f"{version_id[:12]} ({why}); the previous rows are kept in "
                f"{manifest['replaced']['kept_in']}"
            )
        return manifest

    def _finish(
        self,
        planned: PlannedStep,
        status: str,
        manifests: dict[str, Manifest],
        warnings: list[str],
        task: Any,
        t0: float,
    ) -> StepRecord:
        rows: dict[str, int] = {}
        versions: dict[str, str] = {}
        for out, manifest in manifests.items():
            label = _label(planned.name, out)
            self._record(label, manifest)
            rows[label] = int(manifest["rows"])
            versions[label] = manifest["id"]
        seconds = time.perf_counter() - t0
        summary = ", ".join(f"{r:,} rows" for r in rows.values())
        self.display.update(task, f"{planned.step_type.name}: {status}, {summary}", done=True)
        # the step's own warnings (report["warnings"]: null labels dropped, a weak model...),
        # cached too
        step_report = manifests[planned.outputs[0]].get("report") or {}
        warnings = [str(w) for w in step_report.get("warnings") or []] + warnings
        return StepRecord(planned.name, status, versions, rows, seconds, warnings)


def _label(step: str, output: str) -> str:
    return step if output == MAIN_OUTPUT else f"{step}.{output}"
