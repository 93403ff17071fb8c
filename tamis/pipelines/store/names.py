"""Names in a store: version ids (64 lowercase hex digits), refs, the default root, timestamps."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path

from tamis.errors import StoreError

DEFAULT_STORE = ".tamis"
ID_RE = re.compile(r"[0-9a-f]{64}")
HEX_RE = re.compile(r"[0-9a-f]+")
REF_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*")


def is_version_id(value: object) -> bool:
    return isinstance(value, str) and ID_RE.fullmatch(value) is not None


def check_version_id(value: object) -> str:
    """A version id is exactly 64 lowercase hex digits: never a path, never `../...`."""
    if not is_version_id(value):
        raise StoreError(
            f"{value!r} is not a version id (64 lowercase hex digits)",
            fix="pass a version id, an id prefix or a ref (see `tamis versions`)",
        )
    return str(value)


def check_ref_name(ref: str) -> str:
    """A ref is `<pipeline>/<step>[.<output>]`-like: no spaces, no `..`, nothing trimmed."""
    if not isinstance(ref, str) or REF_RE.fullmatch(ref) is None:
        raise StoreError(
            f"{ref!r} is not a valid ref name",
            fix="refs are names like <pipeline>/<step>: letters, digits, '_', '-', '.', "
            "segments joined by '/', no spaces",
        )
    return ref


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def default_store_path() -> Path:
    return Path(os.environ.get("TAMIS_STORE") or DEFAULT_STORE)
