"""Fixtures shared by the pipeline tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from tamis.cli import app


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
