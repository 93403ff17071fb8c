"""The catalog: an embedded DuckDB file that indexes versions, lineage edges, refs and runs.

The catalog is an index, not the source of truth: every version directory carries its own
manifest, so a catalog row can always be rebuilt from it (see `Store.reindex`). DuckDB allows one
writing process at a time, so every connection is opened briefly under the store's file lock.

Refs are also appended to `refs.log` (JSON lines, fsynced, one line per build's batch of refs)
before they go into the catalog, so a lost or garbage catalog can be rebuilt, refs included,
from the version directories and that log (`Store.rebuild_catalog`, `tamis verify --repair`).
A missing catalog is rebuilt by the first connection that finds version directories; a file
that DuckDB cannot open is set aside into `damaged/` (never deleted) and rebuilt, with a warning.

Run rows may also be queued (`queue_runs`): written as a small JSON file under `index-pending/`
and put into the catalog by the next connection of any process, before it reads. Opening the
DuckDB file costs 15-30 ms, which is more than a small sweep's own bookkeeping; a queued row is
one atomic file write.

Modules: `lock` (the store's flock), `schema` (the tables), `connection` (connections, rebuild
of a missing or broken file, queued runs), `tables` (the `Catalog`: versions, refs, runs).
"""

from tamis.pipelines.catalog.connection import CatalogConnection
from tamis.pipelines.catalog.lock import DEFAULT_LOCK_TIMEOUT_S, LOCK_NOTICE_S, lock_timeout
from tamis.pipelines.catalog.schema import SCHEMA
from tamis.pipelines.catalog.tables import Catalog

__all__ = [
    "DEFAULT_LOCK_TIMEOUT_S",
    "LOCK_NOTICE_S",
    "SCHEMA",
    "Catalog",
    "CatalogConnection",
    "lock_timeout",
]
