"""Canonical JSON and hashing: the basis of content addresses and cache keys."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import re
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


# --- Code hashes: cache keys follow the code that runs -------------------------------------------
#
# A step's cache key covers the source of its module and of every module it imports from its own
# top-level package (`tamis.*` for the built-in steps), followed transitively through the import
# statements found anywhere in the source (steps import their capability inside `run`, so the
# imports are read from the syntax tree, not from what is loaded). The source bytes are hashed as
# they are: any change to a module a step can execute (even a comment: cheap and never stale)
# changes the key of every step that reaches it. Parent
# packages' `__init__` files are not included unless imported by name, nor are third-party
# libraries (pin them in the environment). Computed once per module per process, from the files
# on disk: edit code while a long-lived process (a notebook) runs, and restart it before building.


@functools.cache
def _package_root(top: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _module_file(name: str) -> Path | None:
    """The source file of module `name` (a package's `__init__.py`), without importing it."""
    import sys

    module = sys.modules.get(name)
    origin = getattr(module, "__file__", None) if module is not None else None
    if origin and origin.endswith(".py"):
        return Path(origin)
    parts = name.split(".")
    root = _package_root(parts[0])
    if root is None:
        if len(parts) == 1:
            import importlib.util

            try:
                spec = importlib.util.find_spec(name)
            except (ImportError, ValueError):
                return None
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                return Path(spec.origin)
        return None
    base = root.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _read_source(path: Path) -> bytes:
    """The bytes of a source file (a seam for tests that simulate a code change)."""
    return path.read_bytes()


_FROM_IMPORT = re.compile(
    rb"^[ \t]*from[ \t]+(\.*)([\w.]*)[ \t]+import[ \t]+(\([^)]*\)|[^\n#;]*)", re.MULTILINE
)
_IMPORT = re.compile(rb"^[ \t]*import[ \t]+([^\n#;]+)", re.MULTILINE)


def _names(text: bytes) -> list[str]:
    names = []
    for part in text.decode("utf-8", "replace").strip("()\\ \t\n").split(","):
        word = part.split(" as ")[0].strip(" \t\n()\\")
        if word and word != "*":
            names.append(word)
    return names


def _imports(source: bytes, name: str, is_package: bool) -> set[str]:
    """Module names imported anywhere in `source` (relative imports resolved against `name`).

    Read with two regular expressions over the lines (10x faster than walking the syntax tree);
    an import-like line inside a string only adds a module to the hash, never drops one.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for match in _IMPORT.finditer(source):
        found.update(_names(match.group(1)))
    for match in _FROM_IMPORT.finditer(source):
        level = len(match.group(1))
        module = match.group(2).decode()
        if level:
            parts = package.split(".") if package else []
            if level - 1 >= len(parts):
                continue
            base = ".".join(parts[: len(parts) - (level - 1)])
            base = f"{base}.{module}" if module else base
        else:
            base = module
        if base:
            found.add(base)
            # `from pkg import name` may name a submodule
            found.update(f"{base}.{n}" for n in _names(match.group(3)))
    return found


@functools.cache
def _module_digest(name: str) -> tuple[str, frozenset[str]] | None:
    """(sha256 of the source, imported module names) of one module, or None when it has no source."""
    path = _module_file(name)
    if path is None:
        return None
    source = _read_source(path)
    return hashlib.sha256(source).hexdigest(), frozenset(
        _imports(source, name, path.name == "__init__.py")
    )


@functools.cache
def module_code_hash(name: str) -> str:
    """Hash of module `name` and every module of its own top-level package it imports, transitively.

    Modules of other packages are followed too when they are `tamis` modules (a plug-in step
    importing tamis capabilities). Stable across processes for unchanged code.
    """
    followed = {name.split(".")[0], "tamis"}
    seen: dict[str, str] = {}
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        info = _module_digest(current)
        if info is None:
            continue
        seen[current] = info[0]
        todo.extend(m for m in info[1] if m.split(".")[0] in followed and m not in seen)
    digest = hashlib.sha256()
    for module in sorted(seen):
        digest.update(f"{module}\x00{seen[module]}\x01".encode())
    return digest.hexdigest()


def clear_code_hashes() -> None:
    """Forget the per-process code hashes (tests that change source files)."""
    _module_digest.cache_clear()
    module_code_hash.cache_clear()
