"""What a build returns and records: a row per step (`StepRecord`), the build's versions and
warnings (`BuildResult`), and the catalog writes of its cache hits, batched (`PendingIndex`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tamis.pipelines.store import Manifest, RunRecord, Store


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
    versions: dict[str, Manifest] = field(default_factory=dict)
    steps: list[StepRecord] = field(default_factory=list)
    seconds: float = 0.0
    #: warnings about the sources (e.g. a header row that looks like data)
    warnings: list[str] = field(default_factory=list)
    #: the engine's totals over the build (rows and bytes read, parts written, peak spill)
    engine: dict[str, Any] = field(default_factory=dict)

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
            **({"engine": self.engine} if self.engine else {}),
        }


class PendingIndex:
    """Catalog writes for cached versions (index rows, refs), batched into one Store call."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.manifests: list[Manifest] = []
        self.refs: list[tuple[str, str]] = []

    def flush(self, run: RunRecord | None = None) -> None:
        """Index the cache hits seen so far; with `run` (the build's end) move the refs too."""
        if not self.manifests and run is None:
            return
        self.store.index_found(self.manifests, refs=self.refs if run else None, run=run)
        self.manifests.clear()
        if run is not None:
            self.refs.clear()
