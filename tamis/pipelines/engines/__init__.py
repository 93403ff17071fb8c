"""Engines run a step by its kind: in memory (`Step.run`), the bounded local engine (the default of
`tamis build`) and the Ray engine (`--engine ray`, `engines/ray_engine.py`), all behind `Engine`.

The bounded engine streams `map` steps batch by batch, hash-partitions `keyed` steps into buckets
spilled to the store's tmp dir, and refuses a `global` step whose input cannot fit the memory limit
before it starts. Outputs are written as Parquet parts whose boundaries depend only on the rows, so
both engines give versions with the same content hash.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from tamis.pipelines.engines.local import BoundedEngine, EngineStats
    from tamis.pipelines.engines.parts import PartInfo
    from tamis.pipelines.steps.base import Step, StepContext, StepOutput

ENGINES = ("local", "ray")


class Engine(Protocol):
    """What the runner needs of an engine (the bounded local one, or Ray's)."""

    memory_limit: int

    @property
    def stats(self) -> EngineStats: ...

    @property
    def local(self) -> BoundedEngine: ...

    def use(self, spill_root: Path, progress: Callable[..., None]) -> None: ...

    def run_step(
        self,
        step: Step[Any],
        inputs: dict[str, Any],
        params: Any,
        ctx: StepContext,
        out: Path,
        *,
        estimated_bytes: int | None = None,
        rows: int | None = None,
    ) -> tuple[list[PartInfo], StepOutput]: ...
