"""Files of a store: fsync, atomic JSON, content hashes memoised per file state, a full disk."""

from __future__ import annotations

import errno
import json
import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tamis.pipelines.hashing import hash_file
from tamis.pipelines.store.names import is_version_id

#: (st_dev, st_ino, st_size, st_mtime_ns) of a data file -> the sha256 it was found to have
HASHED: dict[tuple[int, int, int, int], str] = {}


def is_no_space(exc: BaseException) -> bool:
    """A full disk, from Python (ENOSPC) or wrapped by Polars/DuckDB ("os error 28")."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    text = str(exc)
    return "No space left on device" in text or "os error 28" in text


#: an engine's directory from `Store.engine_tmp` (`<prefix>.<pid>.<nonce>`)
_ENGINE_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,80}")


def writer_gone(name: str) -> bool:
    """True if `name` is a version being written (`<id>.<pid>.<nonce>`) or an engine's parts
    and spill dir (`<prefix>.<pid>.<nonce>`) whose process is gone."""
    parts = name.split(".")
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    if not is_version_id(parts[0]) and _ENGINE_PREFIX.fullmatch(parts[0]) is None:
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def stat_key(path: Path) -> tuple[int, int, int, int]:
    st = path.stat()
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def hash_memo(path: Path) -> str:
    """Content hash of a file, computed once per process and file state (inode, size, mtime)."""
    key = stat_key(path)
    sha = HASHED.get(key)
    if sha is None:
        sha = hash_file(path)
        HASHED[key] = sha
    return sha


def verify_reads() -> bool:
    """TAMIS_VERIFY_READS=hash: every read hashes the data file (once per process and state)."""
    return os.environ.get("TAMIS_VERIFY_READS", "").lower() == "hash"


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fsync_path(Path(dirpath) / name)
        fsync_path(Path(dirpath))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write JSON next to `path` then rename over it, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w") as fh:
        json.dump(payload, fh, indent=2, sort_keys=False, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def schema_of(frame_schema: Mapping[str, pl.DataType]) -> list[dict[str, str]]:
    return [{"name": name, "dtype": str(dtype)} for name, dtype in frame_schema.items()]
