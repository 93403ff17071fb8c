"""The build progress display: one rich line per step (step, status, rows, seconds) on stderr."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn


class BuildProgress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.progress: Progress | None = None

    @contextmanager
    def run(self) -> Iterator[BuildProgress]:
        if not self.enabled:
            yield self
            return
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.fields[step]:<18}"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        with self.progress:
            yield self

    def start(self, step: str, what: str) -> Any:
        if self.progress is None:
            return None
        return self.progress.add_task(what, step=step, total=None)

    def update(self, task: Any, what: str, done: bool = False) -> None:
        if self.progress is not None and task is not None:
            self.progress.update(
                task, description=what, total=1 if done else None, completed=1 if done else 0
            )
