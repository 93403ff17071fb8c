"""docs/steps.md is generated from the step types' params models, so it cannot drift from them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tamis.cli import app

DOCS = Path(__file__).resolve().parents[1] / "docs" / "steps.md"


def test_docs_steps_md_is_what_tamis_steps_markdown_prints() -> None:
    result = CliRunner().invoke(app, ["steps", "--markdown"])
    assert result.exit_code == 0, result.output
    assert DOCS.read_text() == result.stdout, (
        "docs/steps.md is out of date: run `tamis steps --markdown > docs/steps.md`"
    )
    assert "### `dedup` (keyed)" in result.stdout and "### `normalize` (map)" in result.stdout
