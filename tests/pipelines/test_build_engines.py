"""`tamis build --engine ray` gives the versions `--engine local` gives (same ids and content
hashes), on a real CSV through map (normalize, filter), keyed (dedup) and global (split, sample)
steps; the engine is named in the YAML too; a bad engine name is a clear error."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tamis.cli import app


def _add_dedup(pipeline_dir: Path, engine: str | None = None) -> Path:
    spec = yaml.safe_load((pipeline_dir / "pipeline.yaml").read_text())
    spec["steps"]["unique"] = {"use": "dedup", "input": "adults", "params": {"columns": "all"}}
    if engine:
        spec["engine"] = engine
    path = pipeline_dir / f"pipeline_{engine or 'default'}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _build(path: Path, store: Path, *args: str) -> dict:
    """`tamis build` in its own process: a Ray instance belongs to the process that started it,
    and other tests start their own."""
    tamis = Path(sys.executable).parent / "tamis"
    cmd = [str(tamis), "build", str(path), "--store", str(store), "--json", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def _hashes(store: Path) -> dict[str, str]:
    out = {}
    for manifest in (store / "versions").glob("*/manifest.json"):
        m = json.loads(manifest.read_text())
        out[m["id"]] = m["content_hash"]
    return out


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_and_local_builds_give_the_same_versions(pipeline_dir: Path, tmp_path: Path) -> None:
    """One Ray instance per process: the YAML says `engine: ray`, `--engine local` overrides it."""
    path = _add_dedup(pipeline_dir, "ray")
    local = _build(path, tmp_path / "local", "--engine", "local")
    assert local["engine"]["rows_in"] > 0
    ray = _build(path, tmp_path / "ray", "--memory-limit", "64MB")  # the YAML's engine: ray
    assert [s["versions"] for s in ray["steps"]] == [s["versions"] for s in local["steps"]]
    assert _hashes(tmp_path / "ray") == _hashes(tmp_path / "local")
    assert len(_hashes(tmp_path / "ray")) == 8  # source + 5 steps (split has 2 outputs) + dedup


def test_an_unknown_engine_is_a_clear_error(pipeline_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "build",
            str(pipeline_dir / "pipeline.yaml"),
            "--store",
            str(tmp_path / "s"),
            "--engine",
            "spark",
        ],
    )
    assert result.exit_code == 1
    assert "--engine" in result.output and "local or ray" in result.output


def test_a_ray_that_cannot_start_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from tamis.errors import EngineError
    from tamis.pipelines.engines import ray_env

    class _Ray:
        def is_initialized(self) -> bool:
            return False

        def init(self, **kwargs: object) -> None:
            raise RuntimeError("Timed out waiting for file /tmp/ray/session_x/gcs_server_port")

    monkeypatch.setattr(ray_env, "import_ray", lambda: _Ray())
    with pytest.raises(EngineError) as err, ray_env.ray_session(None):
        pass
    text = str(err.value)
    assert "could not start or join a local Ray instance: Timed out" in text
    assert "fix:" in text and "--engine local" in text
    with (
        pytest.raises(EngineError, match="Ray cluster at 127.0.0.2:6379"),
        ray_env.ray_session("127.0.0.2:6379"),
    ):
        pass
