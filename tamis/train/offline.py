"""Run the Hugging Face libraries offline whenever every model a run loads is local.

tamis reads its data from the store or from files, never from the Hub; a model is local when it
is `tiny` (built here) or an existing directory. Then `HF_HUB_OFFLINE`, `TRANSFORMERS_OFFLINE`
and `HF_DATASETS_OFFLINE` are set to 1 for the duration of the run (and the constants of the
libraries already imported are patched, as they read the variables once at import), so nothing
can resolve or reach the Hub. A value the user set explicitly is left alone. Hub telemetry is off
in every case (`tamis/__init__.py`).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


def is_local(model: str | None) -> bool:
    """`tiny`, nothing, or an existing local path (a hub id such as `org/name` is not local)."""
    if model is None or model == "tiny":
        return True
    return Path(model).expanduser().exists()


def _patch(value: bool) -> dict[tuple[str, str], object]:
    """Set the offline constants of already imported modules; return their previous values."""
    old: dict[tuple[str, str], object] = {}
    for module, names in (
        ("huggingface_hub.constants", ("HF_HUB_OFFLINE",)),
        ("datasets.config", ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")),
    ):
        mod = sys.modules.get(module)
        for name in names:
            if mod is not None and hasattr(mod, name):
                old[(module, name)] = getattr(mod, name)
                setattr(mod, name, value)
    return old


@contextlib.contextmanager
def offline_if_local(*models: str | None) -> Iterator[bool]:
    """Offline for the block when every model in `models` is local; yields whether it is."""
    if not all(is_local(m) for m in models):
        yield False
        return
    explicit = {k for k in OFFLINE_VARS if k in os.environ}
    if explicit:  # the user chose; respect it (telemetry stays off regardless)
        yield all(os.environ[k].strip().lower() in ("1", "true", "yes", "on") for k in explicit)
        return
    for key in OFFLINE_VARS:
        os.environ[key] = "1"
    old = _patch(True)
    try:
        yield True
    finally:
        for key in OFFLINE_VARS:
            os.environ.pop(key, None)
        for (module, name), value in old.items():
            setattr(sys.modules[module], name, value)
