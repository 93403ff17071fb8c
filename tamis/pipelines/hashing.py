"""Canonical JSON and hashing: the basis of content addresses and cache keys."""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

CHUNK = 8 * 1024 * 1024


def _canonical(value: Any) -> Any:
    """Normalise a params value so that equal meanings hash equally (sorted keys, no NaN)."""
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, Path):
        return str(value)
    return value


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, integral floats as ints."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), default=str)


def hash_json(value: Any) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()


TREE_CHUNK = 64 * 1024 * 1024


def _chunk_digest(path: Path, offset: int, size: int) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        remaining = size
        while remaining > 0 and (chunk := fh.read(min(CHUNK, remaining))):
            digest.update(chunk)
            remaining -= len(chunk)
    return digest.digest()


def hash_file(path: Path) -> str:
    """Content hash of a file: plain sha256 up to 64 MiB; above that a one-level tree hash.

    The tree hash (sha256 over the sha256 of each 64 MiB chunk) lets the chunks be hashed on
    several cores at once (hashlib releases the GIL), which keeps the store's write overhead small.
    """
    size = path.stat().st_size
    if size <= TREE_CHUNK:
        return _chunk_digest(path, 0, size).hex()
    from concurrent.futures import ThreadPoolExecutor

    offsets = range(0, size, TREE_CHUNK)
    workers = min(len(offsets), os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        digests = list(pool.map(lambda off: _chunk_digest(path, off, TREE_CHUNK), offsets))
    return "tree-" + hashlib.sha256(b"".join(digests)).hexdigest()


def hash_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.name).encode())
        digest.update(hash_file(path).encode())
    return digest.hexdigest()
