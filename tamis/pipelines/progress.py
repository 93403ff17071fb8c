"""Build progress on stderr: a rich line per step on a terminal, plain heartbeat lines otherwise.

On a terminal the rich display shows each step (status, last message, elapsed time). When stderr
is not a terminal (a log file, CI, `--json` piped somewhere), a heartbeat thread writes one plain
line at least every `HEARTBEAT_SECONDS` while a step runs, with the last message the step
reported, e.g. `[build adult] step synth running 40 s (DP-SGD step 120/900)`, and one line when
such a long step ends. Steps that finish within the interval print nothing, so quick builds stay
quiet.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

#: seconds between two heartbeat lines while a step runs (module-level so tests can shorten it)
HEARTBEAT_SECONDS = 10.0


def progress_message(msg: str, completed: Any = None, total: Any = None) -> str:
    """A step's progress report as one short text (`completed/total` appended when given)."""
    text = str(msg)
    if completed is not None and total is not None and f"{completed}/{total}" not in text:
        text += f" ({completed}/{total})"
    return text


class _Heartbeat:
    """A daemon thread that logs the running step every `interval` seconds."""

    def __init__(self, label: str, interval: float, stream: IO[str] | None) -> None:
        self.label = label
        self.interval = interval
        self.stream = stream
        self.lock = threading.Lock()
        self.step: str | None = None
        self.message = ""
        self.started = 0.0
        self.beats = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="tamis-heartbeat", daemon=True)

    def _write(self, line: str) -> None:
        stream = self.stream or sys.stderr
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed stream must never break a build
            pass

    def _loop(self) -> None:
        while not self.stop.wait(self.interval / 4):
            with self.lock:
                if self.step is None:
                    continue
                elapsed = time.monotonic() - self.started
                if elapsed < self.interval * (self.beats + 1):
                    continue
                self.beats += 1
                note = f" ({self.message})" if self.message else ""
                line = f"[{self.label}] step {self.step} running {elapsed:.0f} s{note}"
            self._write(line)

    def begin(self, step: str) -> None:
        with self.lock:
            self.step, self.message, self.started, self.beats = step, "", time.monotonic(), 0

    def note(self, message: str) -> None:
        with self.lock:
            self.message = message

    def end(self, summary: str) -> None:
        with self.lock:
            step, beats, started = self.step, self.beats, self.started
            self.step = None
        if step is not None and beats:
            elapsed = time.monotonic() - started
            self._write(f"[{self.label}] step {step} {summary} after {elapsed:.0f} s")


class BuildProgress:
    def __init__(
        self,
        enabled: bool,
        *,
        pipeline: str = "",
        heartbeat: bool | None = None,
        interval: float | None = None,
        stream: IO[str] | None = None,
    ) -> None:
        """`enabled`: the rich display (a terminal). `heartbeat`: plain lines for long steps
        (default: whenever the rich display is off)."""
        self.enabled = enabled
        self.progress: Progress | None = None
        self.heartbeat: _Heartbeat | None = None
        if heartbeat if heartbeat is not None else not enabled:
            self.heartbeat = _Heartbeat(
                f"build {pipeline}".strip(),
                HEARTBEAT_SECONDS if interval is None else interval,
                stream,
            )

    @contextmanager
    def run(self) -> Iterator[BuildProgress]:
        if self.heartbeat is not None:
            self.heartbeat.thread.start()
        try:
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
        finally:
            if self.heartbeat is not None:
                self.heartbeat.stop.set()
                self.heartbeat.thread.join(timeout=5)

    def start(self, step: str, what: str) -> Any:
        if self.heartbeat is not None:
            self.heartbeat.begin(step)
        if self.progress is None:
            return step
        return self.progress.add_task(escape(what), step=escape(step), total=None)

    def update(self, task: Any, what: str, done: bool = False) -> None:
        if self.heartbeat is not None:
            if done:
                self.heartbeat.end(what)
            else:
                self.heartbeat.note(what)
        if self.progress is not None and task is not None:
            self.progress.update(
                task,
                description=escape(what),
                total=1 if done else None,
                completed=1 if done else 0,
            )
