"""tamis: a fine sieve for data-centric ML.

Curated, versioned, audited datasets, and measurements of what each curation choice does to the
models trained on them.

No network unless the user asks for it: importing tamis turns Hugging Face Hub telemetry off for
this process (always; tamis handles private data and never phones home), and `tamis train` runs
the Hub libraries offline whenever the models it loads are local (`tamis.train.offline`).
"""

import os
import sys
from importlib.metadata import PackageNotFoundError, version

#: Environment variables that switch telemetry off in huggingface_hub (and other tools honouring
#: https://donottrack.sh). Set unconditionally: telemetry is never wanted.
TELEMETRY_OFF = ("HF_HUB_DISABLE_TELEMETRY", "DISABLE_TELEMETRY", "DO_NOT_TRACK")


def _telemetry_off() -> None:
    for key in TELEMETRY_OFF:
        os.environ[key] = "1"
    constants = sys.modules.get("huggingface_hub.constants")  # imported before tamis
    if constants is not None:
        constants.HF_HUB_DISABLE_TELEMETRY = True  # type: ignore[attr-defined]


_telemetry_off()

#: Polars' allocator (jemalloc) keeps freed pages for 10 s by default, so a build's resident
#: memory stays at its peaks long after they pass; return them at once (the same CPU time in
#: `bench_exact_dedup_100m`, ~40 MB lower peak at a 300MB limit). Only takes effect when tamis is
#: imported before Polars (the `tamis` command); an explicit setting is kept.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

try:
    __version__ = version("tamis")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
