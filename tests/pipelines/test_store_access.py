"""Store access (issue 13, section 3): a read-only store can be read, the lock says it waits and
gives up with a clear error, a full disk gives one clear error naming the path."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tamis.errors import StoreError
from tamis.pipelines.runner import build
from tamis.pipelines.store import Store

TAMIS = [str(Path(sys.executable).parent / "tamis")]


def _tamis(
    *args: str, env: dict[str, str] | None = None, user: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*(user or []), *TAMIS, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": "/tmp", **(env or {})},
    )


def test_the_lock_says_it_waits_and_gives_up(pipeline_dir: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "st")
    build(pipeline_dir / "pipeline.yaml", store)
    fd = os.open(store.catalog.lock_path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)  # another writer holds the store
    try:
        res = _tamis(
            "build",
            str(pipeline_dir / "pipeline.yaml"),
            "--store",
            str(store.root),
            env={"TAMIS_LOCK_TIMEOUT": "1.5"},
        )
        assert res.returncode == 1, res.stderr
        assert "waiting for the store lock" in res.stderr
        assert "gave up waiting" in res.stderr and "TAMIS_LOCK_TIMEOUT" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    res = _tamis("versions", "--store", str(store.root), "--json", env={"TAMIS_LOCK_TIMEOUT": "x"})
    assert res.returncode == 1 and "TAMIS_LOCK_TIMEOUT" in res.stderr


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory that another user can traverse (pytest's tmp dirs are private)."""
    path = Path(tempfile.mkdtemp(prefix="tamis-ro-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_a_read_only_store_can_be_read(pipeline_dir: Path, shared_dir: Path) -> None:
    pipe = shared_dir / "pipe"
    shutil.copytree(pipeline_dir, pipe, ignore=shutil.ignore_patterns("st*"))
    store = Store(shared_dir / "st")
    build(pipe / "pipeline.yaml", store)
    (shared_dir / "out").mkdir()
    (shared_dir / "out").chmod(0o777)
    subprocess.run(["chmod", "-R", "a+rX,go-w", str(store.root)], check=True)
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    st = str(store.root)
    res = _tamis("versions", "--store", st, "--json", user=nobody)
    assert res.returncode == 0, res.stderr
    assert len(json.loads(res.stdout)["versions"]) == 7
    res = _tamis("show", "p/small", "--rows", "2", "--store", st, "--json", user=nobody)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["rows"] == 500
    res = _tamis("verify", "--store", st, "--json", user=nobody)
    assert res.returncode == 0, res.stderr
    target = shared_dir / "out" / "small.csv"
    res = _tamis("export", "p/small", "--to", str(target), "--store", st, user=nobody)
    assert res.returncode == 0, res.stderr
    assert pl.read_csv(target).height == 500
    subprocess.run(["chmod", "-R", "a+rX", str(pipe)], check=True)
    res = _tamis("build", str(pipe / "pipeline.yaml"), "--store", st, user=nobody)
    assert res.returncode == 1 and "read-only" in res.stderr and "Traceback" not in res.stderr


def test_a_full_disk_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = Store(tmp_path / "st")
    frame = pl.DataFrame({"x": np.arange(100_000)})

    def full(self: pl.DataFrame, path: object, *a: object, **k: object) -> None:
        Path(str(path)).write_bytes(b"PAR1")  # a partial file, then the disk is full
        raise pl.exceptions.ComputeError(
            "parquet: File out of specification: underlying IO error: "
            "No space left on device (os error 28)"
        )

    monkeypatch.setattr(pl.DataFrame, "write_parquet", full)
    with pytest.raises(StoreError) as info:
        store.write_version(
            version_id="c" * 64, name="t/x", frame=frame, parents=[], step={"name": "x"}, seed=0
        )
    text = info.value.render()
    assert "out of disk space" in text and str(store.tmp_dir) in text
    assert f"about {frame.estimated_size() / 1e6:,.1f} MB needed" in text
    assert not any(store.tmp_dir.iterdir()) and not any(store.versions_dir.iterdir())


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
def test_a_really_full_disk(tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        store = Store(mnt / "st")
        store.write_version(
            version_id="d" * 64,
            name="t/small",
            frame=pl.DataFrame({"a": [1, 2]}),
            parents=[],
            step={"name": "x"},
            seed=0,
        )
        big = pl.DataFrame({"x": np.random.default_rng(0).random(500_000)})
        with pytest.raises(StoreError, match="out of disk space"):
            store.write_version(
                version_id="e" * 64, name="t/big", frame=big, parents=[], step={"name": "x"}, seed=0
            )
        assert [p.name for p in store.versions_dir.iterdir()] == ["d" * 64]
        assert store.read("d" * 64)["a"].to_list() == [1, 2]  # the store is intact
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")
@pytest.mark.parametrize("size", ["700k", "1500k", "2500k"])
def test_a_build_on_a_full_disk_never_prints_a_traceback(
    pipeline_dir: Path, tmp_path: Path, size: str
) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        res = _tamis("build", str(pipeline_dir / "pipeline.yaml"), "--store", str(mnt / "st"))
        assert "Traceback" not in res.stderr
        assert res.returncode == 1 and "out of disk space" in res.stderr, res.stderr[-3000:]
        assert str(mnt / "st") in res.stderr
        # whatever was written is intact: verify finds at most versions waiting to be indexed
        res = _tamis("verify", "--store", str(mnt / "st"), "--json")
        problems = json.loads(res.stdout)["problems"]
        assert {p["kind"] for p in problems} <= {"not indexed"}
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
