"""The catalog's queued run rows: written as files, put in the catalog by the next connection."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from tamis.pipelines.catalog import Catalog


def _row(i: int, status: str = "ok") -> dict[str, object]:
    return {
        "id": f"r{i}",
        "kind": "sweep_cell",
        "name": f"n{i}",
        "status": status,
        "info": {"i": i},
    }


def test_queued_rows_are_read_by_the_next_connection(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.queue_runs([_row(1), _row(2)])
    cat.queue_runs([_row(2, "failed"), _row(3)])  # a later row for the same id wins
    assert len(list(cat.pending_dir.glob("*.json"))) == 2 and not cat.path.exists()
    # a read (another Catalog object, as another process would have) ingests first
    rows = Catalog(tmp_path).query("SELECT id, status, info_json FROM runs ORDER BY id")
    assert [(r["id"], r["status"]) for r in rows] == [("r1", "ok"), ("r2", "failed"), ("r3", "ok")]
    assert json.loads(rows[0]["info_json"]) == {"i": 1}
    assert not list(cat.pending_dir.glob("*.json"))  # ingested once, then removed
    assert len(cat.query("SELECT id FROM runs")) == 3


def test_an_unreadable_queue_file_is_set_aside(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.queue_runs([_row(1)])
    cat.pending_dir.joinpath("0-broken.json").write_text("{not json")
    assert [r["id"] for r in cat.query("SELECT id FROM runs")] == ["r1"]
    assert [p.name for p in cat.pending_dir.iterdir()] == ["0-broken.bad"]


def _queue_many(root: str, start: int) -> None:
    cat = Catalog(Path(root))
    for i in range(start, start + 20):
        cat.queue_runs([_row(i)])
        if i % 5 == 0:
            cat.query("SELECT count(*) FROM runs")  # ingests while the other process queues


def test_processes_queueing_and_ingesting_at_once_lose_nothing(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_queue_many, args=(str(tmp_path), s)) for s in (0, 100, 200)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    ids = {r["id"] for r in Catalog(tmp_path).query("SELECT id FROM runs")}
    assert ids == {f"r{i}" for s in (0, 100, 200) for i in range(s, s + 20)}


def test_sweep_runs_and_a_builds_refs_go_through_the_store(tmp_path: Path) -> None:
    """The store is the one door to the catalog: sweeps' lookups and a build's refs and run."""
    from tamis.pipelines.store import RunRecord, Store

    store = Store(tmp_path / "st")
    assert store.sweep_runs("iris", "iris") == []  # no store yet: nothing, no catalog made
    store.catalog.queue_runs(
        [
            {"id": "sweep-abcd1234", "kind": "sweep", "name": "iris", "status": "ok",
             "finished_at": "2026-01-01", "info": {"path": "/a"}},
            {"id": "sweep-abcd9999", "kind": "sweep", "name": "iris", "status": "ok",
             "finished_at": "2026-01-02", "info": {"path": "/b"}},
            {"id": "sweep-ffff0000", "kind": "sweep", "name": "iris", "status": "failed",
             "finished_at": "2026-01-03", "info": {"path": "/c"}},
        ]
    )  # fmt: skip
    assert [r["info"]["path"] for r in store.sweep_runs("iris", "iris")] == ["/b", "/a"]
    assert [r["id"] for r in store.sweep_runs("x", "abcd1")] == ["sweep-abcd1234"]
    assert store.sweep_runs("x", "abc") == []  # a prefix needs 4+ characters
    run = RunRecord(id="b1", kind="build", name="p", status="ok", info={"steps": []})
    store.index_found([], refs=[("p/a", "0" * 64)], run=run)
    assert store.catalog.query("SELECT ref, version_id FROM refs") == [
        {"ref": "p/a", "version_id": "0" * 64}
    ]
    assert store.catalog.logged_refs()["p/a"][0] == "0" * 64  # refs.log first
    assert store.catalog.query("SELECT kind FROM runs WHERE id = 'b1'") == [{"kind": "build"}]
