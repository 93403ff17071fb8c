"""tamis: a fine sieve for data-centric ML.

Curated, versioned, audited datasets, and measurements of what each curation choice does to the
models trained on them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tamis")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
