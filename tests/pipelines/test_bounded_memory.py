"""A build's peak memory stays within its `--memory-limit` (+15%), whole process included.

`tamis build` runs in a child process on a generated Parquet input whose rows take several times
the limit (source import, then exact dedup: keyed, spilled). The child reports its peak private
(anonymous) memory, sampled every 10 ms, and the kernel's VmHWM (peak resident memory) with the
file-backed part of its resident memory as the build ends. The file-backed part is mostly the
pages of shared libraries (Polars, pyarrow...): 150-230 MB here, more in a venv whose files were
just written (the page cache maps them in larger pieces), so it is what the machine, not the
build, decides; the limit is checked on the private memory, sampled and as VmHWM minus the
file-backed pages. The rows out are checked against a count of the distinct keys made by Polars in
this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import yaml

#: the child: `tamis build ARGS`, then "peak private kB, VmHWM kB, file-backed kB" written to the
#: file named first (a thread samples RssAnon every 10 ms)
CHILD = """
import sys, threading
from tamis.cli import app

def status():
    lines = open("/proc/self/status").read().splitlines()
    return {l.split(":")[0]: int(l.split()[1]) for l in lines if l.startswith(("Rss", "VmHWM"))}

peak, args = sys.argv[1], sys.argv[2:]
anon, done = [0], threading.Event()

def sample():
    while not done.wait(0.01):
        anon[0] = max(anon[0], status()["RssAnon"])

threading.Thread(target=sample, daemon=True).start()
try:
    app(args)
finally:
    done.set()
    end = status()
    anon[0] = max(anon[0], end["RssAnon"])
    open(peak, "w").write(f"{anon[0]} {end['VmHWM']} {end['RssFile']}")
"""
LIMIT_MB = 512
ROWS = 3_000_000
PART_ROWS = 500_000


def _generate(directory: Path) -> pl.DataFrame:
    """ROWS rows of 6 columns, ~2x the limit in memory; every 10th row (k % 10 == 3) copies
    the row of key k // 10 (so 91% of the rows are distinct). Returns the keys."""
    directory.mkdir()
    keys = []
    for i, start in enumerate(range(0, ROWS, PART_ROWS)):
        k = pl.int_range(start, min(start + PART_ROWS, ROWS), eager=True).alias("k")
        frame = (
            pl.DataFrame(k)
            .with_columns(
                pl.when(pl.col("k") % 10 == 3).then(pl.col("k") // 10).otherwise(pl.col("k"))
            )
            .select(
                pl.col("k").alias("id"),
                pl.format("user_{}", pl.col("k") % 100_003).alias("user"),
                pl.format("https://shop{}.example/item/{}", pl.col("k") % 997, pl.col("k")).alias(
                    "url"
                ),
                (pl.col("k") * 31 % 1000).alias("amount"),
                pl.concat_str(
                    [pl.format("{} words of text about item {} ", pl.col("k") % 13, pl.col("k"))]
                    * 6
                ).alias("text"),
            )
        )
        frame.write_parquet(directory / f"p{i:03d}.parquet")
        keys.append(frame.select("id"))
    return pl.concat(keys)


def test_a_build_stays_within_its_memory_limit(tmp_path: Path) -> None:
    keys = _generate(tmp_path / "data")
    in_memory = pl.scan_parquet(tmp_path / "data").collect().estimated_size()
    assert in_memory > 1.5 * LIMIT_MB * 10**6  # the input is larger than the limit
    spec = {
        "name": "m",
        "sources": {"d": {"path": str(tmp_path / "data")}},
        "steps": {"u": {"use": "dedup", "input": "d"}},
    }
    pipeline = tmp_path / "m.yaml"
    pipeline.write_text(yaml.safe_dump(spec))
    store = tmp_path / "store"
    args = ["build", str(pipeline), "--store", str(store), "--memory-limit", f"{LIMIT_MB}MB"]
    env = {**os.environ, "POLARS_MAX_THREADS": "2"}
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path / "peak"), *args], env=env, capture_output=True
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    anon_mb, hwm_mb, file_mb = (int(x) / 1024 for x in (tmp_path / "peak").read_text().split())
    seen = f"private {anon_mb:.0f} MB, VmHWM {hwm_mb:.0f} MB of which file-backed {file_mb:.0f} MB"
    assert anon_mb <= LIMIT_MB * 1.15, f"{seen}: over {LIMIT_MB}MB + 15%"
    assert hwm_mb - file_mb <= LIMIT_MB * 1.15, f"{seen}: over {LIMIT_MB}MB + 15%"
    # the source version holds every row, the dedup's the distinct ones: the smaller one
    counts = sorted(
        pl.scan_parquet(d / "*.parquet").select(pl.len()).collect().item()
        for d in store.glob("versions/*/data")
    )
    assert counts == [keys["id"].n_unique(), ROWS]
