"""The catalog's tables: versions, lineage edges, refs, runs and remembered source hashes."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS versions (
    id VARCHAR PRIMARY KEY,
    name VARCHAR,
    pipeline VARCHAR,
    step VARCHAR,
    step_type VARCHAR,
    created_at VARCHAR,
    rows BIGINT,
    columns INTEGER,
    content_hash VARCHAR,
    cache_key VARCHAR,
    schema_json VARCHAR,
    run_id VARCHAR
);
CREATE TABLE IF NOT EXISTS edges (
    parent VARCHAR,
    child VARCHAR,
    role VARCHAR
);
CREATE TABLE IF NOT EXISTS refs (
    ref VARCHAR PRIMARY KEY,
    version_id VARCHAR,
    updated_at VARCHAR
);
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR PRIMARY KEY,
    kind VARCHAR,
    name VARCHAR,
    started_at VARCHAR,
    finished_at VARCHAR,
    status VARCHAR,
    info_json VARCHAR
);
CREATE TABLE IF NOT EXISTS source_files (
    path VARCHAR PRIMARY KEY,
    size BIGINT,
    mtime_ns BIGINT,
    sha256 VARCHAR
);
"""
