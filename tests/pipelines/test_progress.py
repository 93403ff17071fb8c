"""Long steps print plain progress lines when stderr is not a terminal (a log, CI)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines import progress
from tamis.pipelines.engines.local import BoundedEngine
from tamis.pipelines.engines.memory import parse_size
from tamis.pipelines.registry import step_types
from tamis.pipelines.runner import build
from tamis.pipelines.steps.base import BatchResult, MapStep, NoParams, Step, StepContext, StepOutput
from tamis.pipelines.store import Store


class SlowStep(Step):
    """A step that takes ~1 s and reports its epochs, like a synthesizer does."""

    name = "slow_for_test"
    Params = NoParams

    def run(self, inputs: dict[str, Any], params: Any, ctx: StepContext) -> StepOutput:
        for epoch in range(1, 7):
            ctx.progress(f"epoch {epoch}/6")
            time.sleep(0.17)
        return StepOutput(frames={"data": inputs["input"]})


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setitem(step_types(), SlowStep.name, SlowStep)
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.2)
    pl.DataFrame({"x": [1, 2, 3]}).write_csv(tmp_path / "d.csv")
    spec = {
        "name": "slowp",
        "sources": {"d": {"path": "d.csv"}},
        "steps": {
            "quick": {"use": "filter", "input": "d", "params": {"where": "x > 0"}},
            "fit": {"use": SlowStep.name, "input": "quick"},
        },
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "p.yaml"


LINE = re.compile(r"^\[build slowp\] step fit running (\d+) s( \((.*)\))?$")


def _heartbeats(text: str) -> list[re.Match[str]]:
    return [m for line in text.splitlines() if (m := LINE.match(line.strip()))]


def test_heartbeat_lines_on_non_tty_stderr(
    slow: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(slow, Store(tmp_path / "st"), progress=False)
    err = capsys.readouterr().err
    beats = _heartbeats(err)
    # ~1 s of work at one line per 0.2 s: several lines, each with the step's last message
    assert len(beats) >= 3, err
    messages = [m.group(3) for m in beats]
    assert all(msg and re.search(r"epoch [1-6]/6", msg) for msg in messages), messages
    assert len(set(messages)) >= 2  # the message follows the step
    assert re.search(r"\[build slowp\] step fit slow_for_test: built, 3 rows after \d+ s", err)
    # a cached rebuild is silent
    build(slow, Store(tmp_path / "st"), progress=False)
    assert capsys.readouterr().err == ""


def test_heartbeat_through_the_cli(slow: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["build", str(slow), "--store", str(tmp_path / "st"), "--json"])
    assert res.exit_code == 0, res.output
    assert len(_heartbeats(res.stderr)) >= 3, res.stderr
    assert res.stdout.lstrip().startswith("{")  # stdout stays one JSON document


def test_quick_builds_print_nothing(
    pipeline_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build(pipeline_dir / "pipeline.yaml", Store(tmp_path / "st"), progress=False)
    assert "[build p]" not in capsys.readouterr().err


def test_progress_message_with_counts() -> None:
    assert progress.progress_message("DP-SGD", completed=3, total=9) == "DP-SGD (3/9)"
    assert progress.progress_message("DP-SGD step 3/9", completed=3, total=9) == "DP-SGD step 3/9"
    assert progress.progress_message("hashing rows") == "hashing rows"


def test_no_heartbeat_on_a_terminal_display() -> None:
    assert progress.BuildProgress(True).heartbeat is None
    assert progress.BuildProgress(False).heartbeat is not None


class SlowMap(MapStep):
    """A map step that takes ~0.17 s a batch."""

    name = "slow_map_for_test"
    Params = NoParams

    def map_batch(self, batch: pl.DataFrame, params: Any, plan: Any, ctx: StepContext) -> Any:
        time.sleep(0.17)
        return BatchResult(batch, {"rows": batch.height})


def test_heartbeat_of_a_streamed_step_shows_the_build_s_rates_parts_and_spill(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(step_types(), SlowMap.name, SlowMap)
    monkeypatch.setattr(progress, "HEARTBEAT_SECONDS", 0.2)
    pl.DataFrame({"x": list(range(6))}).write_csv(tmp_path / "d.csv")
    spec = {
        "name": "slowp",
        "sources": {"d": {"path": "d.csv"}},
        "steps": {"fit": {"use": SlowMap.name, "input": "d"}},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    store = Store(tmp_path / "st")
    engine = BoundedEngine(parse_size("64MB"), store.tmp_dir, batch_rows=1)
    result = build(tmp_path / "p.yaml", store, progress=False, engine=engine)
    messages = [m.group(3) or "" for m in _heartbeats(capsys.readouterr().err)]
    rate = re.compile(
        r"slow_map_for_test: build so far: [\d,]+ rows read, [\d,]+ rows/s, [\d.]+ [KMG]?B/s, \d+ parts"
    )
    assert messages and all(rate.match(m) and "spill" in m for m in messages), messages
    assert result.to_json()["engine"]["rows_in"] == 12  # 6 rows imported, 6 through the step
    assert result.to_json()["engine"]["parts_written"] == 2
