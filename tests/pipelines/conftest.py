"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.store import Store


@pytest.fixture
def cli() -> Callable[..., Any]:
    """`cli(*args, code=0)`: run `tamis ARGS`, check the exit code and that no traceback shows;
    the parsed JSON with --json, else the output."""
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> Any:
        res = runner.invoke(app, list(args))
        assert res.exit_code == code, res.output
        assert "Traceback" not in res.output
        return json.loads(res.stdout) if "--json" in args else res.output

    return run


@pytest.fixture
def build_failing_at(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`build_failing_at(pipeline, store, step, message)`: build with `step` raising
    RuntimeError(message) (a crash mid-step); checks the build raised, then restores the runner."""
    from tamis.pipelines import runner
    from tamis.pipelines.runner import build

    def run(pipeline: Path, store: Store, step: str, message: str = "killed mid-step") -> None:
        real = runner._call

        def boom(s: Any, inputs: Any, params: Any, ctx: Any, **kw: Any) -> Any:
            if ctx.step == step:
                raise RuntimeError(message)
            return real(s, inputs, params, ctx, **kw)

        monkeypatch.setattr(runner, "_call", boom)
        try:
            with pytest.raises(RuntimeError, match=message):
                build(pipeline, store)
        finally:
            monkeypatch.setattr(runner, "_call", real)

    return run
