"""Random store damage never gives a traceback, and a rebuild repairs it (issue 13, sections 2-3).

Each example damages a copy of a built store (flipped bytes, truncation, deleted files or
version dirs, a garbage catalog, a manifest of another version, stray entries), then runs the
read commands, `verify`, and a build: every exit code is 0 or 1, no exception escapes, a build
succeeds, and afterwards `tamis verify` is clean.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

runner = CliRunner()

DAMAGE = ["flip", "truncate", "delete", "delete_dir", "garbage_catalog", "foreign_manifest"]


def invoke(*args: str) -> Any:
    res = runner.invoke(app, list(args))
    assert res.exit_code in (0, 1), (args, res.exit_code, res.output[-2000:])
    assert res.exception is None or isinstance(res.exception, SystemExit), (
        args,
        repr(res.exception),
    )
    assert "Traceback" not in res.output
    return res


def _damage(root: Path, kind: str, pick: int, where: float) -> None:
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name not in ("lock",) and "damaged" not in p.parts
    )
    versions = sorted((root / "versions").iterdir())
    if kind == "flip":
        path = files[pick % len(files)]
        data = bytearray(path.read_bytes())
        if data:
            at = int(where * (len(data) - 1))
            for i in range(at, min(at + 16, len(data))):
                data[i] ^= 0x5A
            with open(path, "r+b") as fh:
                fh.write(bytes(data))
    elif kind == "truncate":
        path = files[pick % len(files)]
        with open(path, "r+b") as fh:
            fh.truncate(int(where * path.stat().st_size))
    elif kind == "delete":
        files[pick % len(files)].unlink()
    elif kind == "delete_dir":
        shutil.rmtree(versions[pick % len(versions)])
    elif kind == "garbage_catalog":
        (root / "catalog.duckdb").write_bytes(b"\x00garbage" * int(1 + where * 1000))
    elif kind == "foreign_manifest":
        a, b = versions[pick % len(versions)], versions[(pick + 1) % len(versions)]
        if (b / "manifest.json").exists() and a.exists():  # an earlier damage may have deleted it
            shutil.copyfile(b / "manifest.json", a / "manifest.json")


DAMAGE_LISTS = st.lists(
    st.tuples(st.sampled_from(DAMAGE), st.integers(0, 1000), st.floats(0, 1, allow_nan=False)),
    min_size=1,
    max_size=3,
)


def check_damage(pipeline_dir: Path, tmp_path: Path, damage: list[tuple[str, int, float]]) -> None:
    base = tmp_path / "base"
    if not base.exists():
        build(pipeline_dir / "pipeline.yaml", Store(base))
    st_dir = tmp_path / "st"
    shutil.rmtree(st_dir, ignore_errors=True)
    shutil.copytree(base, st_dir)
    for kind, pick, where in damage:
        _damage(st_dir, kind, pick, where)
    s = str(st_dir)
    invoke("versions", "--store", s, "--json")
    invoke("show", "p/small", "--rows", "2", "--store", s, "--json")
    out = tmp_path / "out.csv"
    out.unlink(missing_ok=True)
    invoke("export", "p/boot", "--to", str(out), "--store", s)
    invoke("verify", "--store", s, "--json")
    invoke("lineage", "p/boot", "--store", s, "--json")
    res = invoke("build", str(pipeline_dir / "pipeline.yaml"), "--store", s, "--json")
    if res.exit_code == 1:  # what is left needs the fsck's repair, then builds
        invoke("verify", "--repair", "--store", s, "--json")
        res = invoke("build", str(pipeline_dir / "pipeline.yaml"), "--store", s, "--json")
    assert res.exit_code == 0, res.output[-2000:]
    verified = invoke("verify", "--store", s, "--json")
    assert json.loads(verified.stdout)["ok"], verified.stdout[-3000:]
    assert Store(st_dir).read("p/boot").height == 500


FUZZ = {
    "deadline": None,
    "derandomize": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=3, **FUZZ)  # type: ignore[arg-type]
@given(damage=DAMAGE_LISTS)
def test_random_store_damage(
    pipeline_dir: Path, tmp_path: Path, damage: list[tuple[str, int, float]]
) -> None:
    check_damage(pipeline_dir, tmp_path, damage)


@pytest.mark.slow
@settings(max_examples=60, **FUZZ)  # type: ignore[arg-type]
@given(damage=DAMAGE_LISTS)
def test_random_store_damage_many(
    pipeline_dir: Path, tmp_path: Path, damage: list[tuple[str, int, float]]
) -> None:
    check_damage(pipeline_dir, tmp_path, damage)
