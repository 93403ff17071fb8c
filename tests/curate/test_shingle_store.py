"""`ShingleStore.gather` reads rows' shingle sets back exactly, whatever the read size and the
largest gap one read covers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tamis.curate.dedup import spill
from tamis.curate.dedup.shingles import Shingles


class _Stats:
    spill_bytes = 0
    peak_spill_bytes = 0


class _Engine:
    """All `ShingleStore` needs of an engine: the spill counters."""

    def __init__(self) -> None:
        self.stats = _Stats()


@pytest.mark.parametrize("gap_bytes", [0, 100, 64 << 10])
@pytest.mark.parametrize("read_bytes", [8, 24, 1000, 16 << 20])
def test_gather_equals_the_sets_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_bytes: int, gap_bytes: int
) -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(0, 40, 500)
    sizes[[0, 17, 18, 499]] = 0  # empty sets first, in a row and last
    sets = [np.sort(rng.integers(0, 2**63, n, dtype=np.uint64)) for n in sizes]
    store = spill.ShingleStore(tmp_path / "sh", _Engine())  # type: ignore[arg-type]
    for lo in range(0, 500, 120):  # written in batches, as the bounded engine does
        part = sets[lo : lo + 120]
        offsets = np.zeros(len(part) + 1, np.int64)
        np.cumsum([p.size for p in part], out=offsets[1:])
        hashes = np.concatenate(part) if offsets[-1] else np.zeros(0, np.uint64)
        store.append(
            Shingles(offsets=offsets, hashes=hashes, n_tokens=np.zeros(len(part), np.int64))
        )
    store.close()
    monkeypatch.setattr(spill, "READ_BYTES", read_bytes)
    monkeypatch.setattr(spill, "GAP_BYTES", gap_bytes)  # reads straight into the output, or not
    for rows in (
        np.arange(500),
        np.array([0]),
        np.array([17, 18]),
        np.sort(rng.choice(500, 60, replace=False)),
    ):
        got = store.gather(rows)
        assert got.n_docs == rows.size
        for i, r in enumerate(rows):
            assert np.array_equal(got.hashes[got.offsets[i] : got.offsets[i + 1]], sets[r])
