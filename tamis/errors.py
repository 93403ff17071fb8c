"""Exceptions that carry the context a user needs to fix the problem.

Every layer raises these; the CLI turns them into one clear message and exit code 1 (or 3 for a
failed gate). The message always names what is wrong (file, step, field or column) and the fix.
"""

from __future__ import annotations

from typing import Any


class TamisError(Exception):
    """A user-facing error: what went wrong, where, and how to fix it."""

    exit_code = 1

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        step: str | None = None,
        field: str | None = None,
        column: str | None = None,
        fix: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.step = step
        self.field = field
        self.column = column
        self.fix = fix
        self.details = details or {}
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.file:
            where.append(f"file {self.file}")
        if self.step:
            where.append(f"step '{self.step}'")
        if self.field:
            where.append(f"field '{self.field}'")
        if self.column:
            where.append(f"column '{self.column}'")
        text = (", ".join(where) + ": " if where else "") + self.message
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"error": self.message}
        for key in ("file", "step", "field", "column", "fix"):
            value = getattr(self, key)
            if value:
                out[key] = value
        if self.details:
            out["details"] = self.details
        return out


class SpecError(TamisError):
    """The pipeline YAML (or another spec file) is invalid."""


class StoreError(TamisError):
    """The version store is missing something or a reference does not resolve."""


class DataError(TamisError):
    """Data a capability cannot handle (missing column, empty frame, bad dtype...).

    Capabilities raise this without a step name; the runner adds the name of the pipeline step
    that called them.
    """


class StepError(DataError):
    """A pipeline step's adapter refused its inputs or params (the step is named)."""


class MissingDependencyError(TamisError):
    """An optional dependency is not installed; the message carries the pip command."""


class EngineError(TamisError):
    """An engine could not start or reach its workers (a Ray instance or cluster)."""


class GateFailed(TamisError):
    """A quality or privacy gate failed (validate with on_failure: fail, audit policy)."""

    exit_code = 3

    def __init__(self, message: str, *, failed: list[dict[str, Any]], **kwargs: Any) -> None:
        self.failed = failed
        super().__init__(message, details={"failed": failed}, **kwargs)


class PrivacyError(TamisError):
    """A configuration that would break a differential-privacy guarantee was refused."""


def did_you_mean(name: str, known: Any, n: int = 3) -> str:
    """`did you mean a, b? ` when `name` is close to some of `known` (a fix hint's prefix), else ''."""
    import difflib

    close = difflib.get_close_matches(name, list(known), n=n)
    return f"did you mean {', '.join(close)}? " if close else ""
