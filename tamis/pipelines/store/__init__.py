"""The version store: immutable, content-addressed dataset versions on local disk.

Layout of a store directory (default `./.tamis`, or `--store DIR`, or `TAMIS_STORE`):

    catalog.duckdb            index of versions, lineage edges, refs, runs (DuckDB)
    lock                      flock that serialises catalog writers
    versions/<id>/            one immutable version:
        data/part-00000.parquet ...  the rows as Parquet parts in order (bounded size,
                              boundaries that depend only on the rows); older versions hold
                              one data.parquet instead
        manifest.json         id, name, parents, step + canonical params, seed, schema, rows,
                              parts (path, rows, bytes, sha256 each), content hash (a tree over
                              the parts: `parts_hash`), tamis version, report
        tables/<name>.parquet large report tables (clusters, issue lists, ...)
        artifacts/            files a step keeps beside its output (e.g. a fitted model)
    tmp/                      versions being written, engines' parts and spill; never read
    damaged/                  version dirs found damaged, set aside (never deleted) and rebuilt

Crash safety: a version is written into `tmp/`, every file is fsynced, then the directory is
renamed into `versions/` in one atomic step, and only then is the catalog row written. A crash
before the rename leaves only litter in `tmp/`: `Store.housekeeping`, run before a Store's first
write, removes it (at once when the writing process is gone, else once it is 6 hours old). A
crash after the rename but before the catalog row is healed by `reindex` (also run by
`housekeeping`), and a build indexes any cache hit that has no catalog row (`index_found`).

Modules: `names` (ids, refs), `files` (fsync, hashes), `manifest` (typed documents), `data` (a
version's rows: parts, older single files), `dirs`
(version dirs and their integrity), `repair` (tmp litter, reindex, catalog rebuild), `refs`
(resolve, refs, catalog queries), `versions` (the `Store`: read and write versions).

Integrity: the manifest records the size, mtime and sha256 of every file of a version (`files`,
every part included). Reads and cache hits check the sizes (never hashing a part otherwise), and
the manifest's own invariants (parts' rows, the parts tree), and hash a file whose mtime changed
since it was written
(an in-place edit), so altered data fails with "version X is damaged: run `tamis verify`" rather
than being served; a cache hit sets a damaged version aside (into `damaged/`, never deleted) so
that it is rebuilt. TAMIS_VERIFY_READS=hash makes every read hash the data files (once per
process and file state). `tamis verify` (tamis/pipelines/verify.py) re-hashes everything.
Ids are 64 lowercase hex digits and refs are
names (letters, digits, `_ - .`, segments joined by `/`): nothing else resolves.
"""

from __future__ import annotations

from tamis.pipelines.store.files import is_no_space, schema_of, write_json_atomic
from tamis.pipelines.store.manifest import FileRecord, Manifest, RunRecord
from tamis.pipelines.store.names import (
    DEFAULT_STORE,
    HEX_RE,
    ID_RE,
    REF_RE,
    check_ref_name,
    check_version_id,
    default_store_path,
    is_version_id,
    now,
)
from tamis.pipelines.store.versions import Store

__all__ = [
    "DEFAULT_STORE",
    "HEX_RE",
    "ID_RE",
    "REF_RE",
    "FileRecord",
    "Manifest",
    "RunRecord",
    "Store",
    "check_ref_name",
    "check_version_id",
    "default_store_path",
    "is_no_space",
    "is_version_id",
    "now",
    "schema_of",
    "write_json_atomic",
]
