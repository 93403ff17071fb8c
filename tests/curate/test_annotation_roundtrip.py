"""`tamis annotate export` / `import` round trips on the real SMS Spam file (issue 18).

The Label Studio side goes through `label-studio-sdk` 1.0 (dev extra; 2.x would downgrade numpy)
where installed - its `LabelInterface` parses the config, validates tasks, predictions and
annotations and makes the result regions - and is also checked against fixtures written from its
documented JSON export format (cancelled, empty, JSON_MIN...); the Argilla side goes through the
`argilla` client's own `Settings.from_json`, `Record.from_dict` and `Record.to_dict` when it is
installed (dev extra), with the client's connection check stubbed (no server, no network).
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.errors import TamisError
from tamis.pipelines.annotate import export_annotations, import_annotations
from tamis.pipelines.hashing import hash_json
from tamis.pipelines.store import Store


def put(store: Store, frame: pl.DataFrame, name: str) -> str:
    vid = hash_json({"name": name, "rows": frame.write_json()})
    store.write_version(
        version_id=vid,
        name=name,
        frame=frame,
        parents=[],
        step={"name": name, "type": "source"},
        seed=None,
    )
    store.set_ref(name, vid)
    return vid


@pytest.fixture
def sms_store(store: Store, sms: pl.DataFrame) -> Store:
    df = sms.rename({"SMS": "text", "Label": "label"}).with_row_index("id")
    put(store, df[:100], "t/items")
    put(store, df[1000:1200], "t/gold")
    return store


def _export(store: Store, to: Path, ref: str = "t/items", **kw: Any) -> dict[str, Any]:
    """export_annotations with the defaults these tests share (Label Studio, classification)."""
    kw.setdefault("tool", "label-studio")
    kw.setdefault("task", "classification")
    return export_annotations(store, ref, to=to, **kw)


def _gold_export(store: Store, to: Path, gold_share: float, overlap: int) -> dict[str, Any]:
    """A Label Studio classification export of t/items with gold drawn from t/gold."""
    return _export(store, to, gold="t/gold", gold_share=gold_share, overlap=overlap, id_col="id")


def _pairs(n: int) -> pl.DataFrame:
    """n preference pairs whose chosen answer says "good"."""
    return pl.DataFrame(
        {
            "item": [f"p{i}" for i in range(n)],
            "prompt": [f"question {i}?" for i in range(n)],
            "chosen": [f"good answer {i}" for i in range(n)],
            "rejected": [f"bad answer {i}" for i in range(n)],
        }
    )


def _annotate_cli(store: Store, *args: str) -> Any:
    """`tamis annotate ARGS --store STORE` through typer's runner."""
    return CliRunner().invoke(app, ["annotate", *args, "--store", str(store.root)])


def _argilla_export(
    rg: Any, store: Store, to: Path, ref: str = "t/items", **kw: Any
) -> tuple[dict[str, Any], Any, list[Any]]:
    """An Argilla export read back through the client: (result, Settings, Records)."""
    res = _export(store, to, ref, tool="argilla", **kw)
    settings = rg.Settings.from_json(to / ".argilla" / "settings.json")
    records = [rg.Record.from_dict(r) for r in json.loads((to / "records.json").read_text())]
    return res, settings, records


def _tasks(to: Path) -> list[dict[str, Any]]:
    return json.loads((to / "tasks.json").read_text())


def _truth(store: Store, export_id: str) -> dict[str, dict[str, Any]]:
    """task id -> record row, read back from the store (what was sent)."""
    return {r["task_id"]: r for r in store.read(export_id).to_dicts()}


def test_label_studio_export_hides_gold_and_records_it(sms_store: Store, tmp_path: Path) -> None:
    to = tmp_path / "ls"
    res = _gold_export(sms_store, to, gold_share=0.1, overlap=3)
    want_gold = math.ceil(0.1 * 100 / 0.9)
    assert res["gold_items"] == want_gold and res["tasks"] == 100 + want_gold
    tasks = _tasks(to)
    assert len(tasks) == 100 + want_gold
    # the task data holds only the shown text and an opaque id: nothing tells gold apart
    assert {frozenset(t["data"]) for t in tasks} == {frozenset({"tamis_task", "text"})}
    assert all("predictions" not in t for t in tasks)
    record = sms_store.read(res["id"])
    assert record.filter(pl.col("is_gold")).height == want_gold
    gold_items = set(record.filter(pl.col("is_gold"))["item"].to_list())
    assert gold_items.isdisjoint({str(i) for i in range(100)})  # drawn from the gold version
    # the gold labels recorded are the gold version's labels for those items
    gold_df = sms_store.read("t/gold").to_pandas().set_index("id")
    for r in record.filter(pl.col("is_gold")).iter_rows(named=True):
        assert r["gold_label"] == gold_df.loc[int(r["item"]), "label"]
    # gold is spread through the file, not appended at the end
    positions = [
        i
        for i, t in enumerate(tasks)
        if t["data"]["tamis_task"] in set(record.filter(pl.col("is_gold"))["task_id"].to_list())
    ]
    assert min(positions) < len(tasks) // 2
    cfg = ET.fromstring((to / "label_config.xml").read_text())
    assert [c.get("value") for c in cfg.iter("Choice")] == ["ham", "spam"]
    choices = next(cfg.iter("Choices"))
    assert choices.get("toName") == next(cfg.iter("Text")).get("name")
    project = json.loads((to / "project.json").read_text())
    assert project["maximum_annotations"] == 3 and project["label_config"].startswith("<View>")
    manifest = sms_store.manifest(res["id"])
    assert manifest["step"]["type"] == "annotate_export" and manifest["report"]["sent_at"]


def test_export_never_overwrites(sms_store: Store, tmp_path: Path) -> None:
    to = tmp_path / "ls"
    to.mkdir()
    (to / "mine.txt").write_text("keep")
    with pytest.raises(TamisError, match="already exists"):
        _export(sms_store, to)
    assert sorted(p.name for p in to.iterdir()) == ["mine.txt"]
    assert sms_store.list_versions("annotate") == []  # nothing recorded for a refused export
    _export(sms_store, to, overwrite=True)
    assert (to / "mine.txt").read_text() == "keep" and (to / "tasks.json").exists()


def test_export_reads_a_data_file_as_well_as_a_ref(sms_store: Store, tmp_path: Path) -> None:
    """The items and the gold may be data files (read_data): the record keeps their sha256."""
    items, gold = tmp_path / "items.parquet", tmp_path / "gold.csv"
    sms_store.read("t/items").write_parquet(items)
    sms_store.read("t/gold").write_csv(gold)
    res = _export(sms_store, tmp_path / "ls", ref=str(items), gold=str(gold), id_col="id")
    manifest = sms_store.manifest_by_id(res["id"])
    params = manifest["step"]["params"]
    assert params["source"].startswith("file:") and params["gold"].startswith("file:")
    assert manifest["parents"] == []  # no store version was read
    by_ref = _export(sms_store, tmp_path / "ls2", gold="t/gold", id_col="id")
    assert res["tasks"] == by_ref["tasks"] and res["gold_items"] == by_ref["gold_items"] > 0
    with pytest.raises(TamisError, match="does not exist"):
        _export(sms_store, tmp_path / "ls3", ref=str(tmp_path / "nope.parquet"))


def _ls_annotation(who: Any, choice: str | None, when: str, **extra: Any) -> dict[str, Any]:
    result = (
        []
        if choice is None
        else [
            {
                "from_name": "label",
                "to_name": "f_text",
                "type": "choices",
                "value": {"choices": [choice]},
            }
        ]
    )
    return {
        "id": 1,
        "completed_by": who,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": when,
        "updated_at": when,
        "lead_time": 3.2,
        **extra,
    }


def test_label_studio_import_counts_every_reason(sms_store: Store, tmp_path: Path) -> None:
    res = _gold_export(sms_store, tmp_path / "ls", gold_share=0.1, overlap=3)
    sent = _tasks(tmp_path / "ls")
    truth = _truth(sms_store, res["id"])
    flip = {"ham": "spam", "spam": "ham"}
    exported: list[dict[str, Any]] = []
    expected: list[tuple[str, str, str]] = []
    for n, task in enumerate(sent):
        tid = task["data"]["tamis_task"]
        if n == 0:
            continue  # missing from the tool's export
        true = truth[tid]["label"] or truth[tid]["gold_label"]
        anns = []
        for who in (1, 2, 3):
            label = flip[true] if (who == 3 and n % 4 == 0) else true
            anns.append(_ls_annotation(who, label, f"2026-11-0{who}T10:00:00.000000Z"))
            expected.append((tid, str(who), label))
        if n == 1:  # annotator 3 skipped it
            anns[2]["was_cancelled"] = True
            anns[2]["result"] = []
            expected.pop()
        if n == 2:  # an empty submission
            anns[1]["result"] = []
            expected.pop(-2)
        if n == 3:  # a label outside the config
            anns[0]["result"][0]["value"]["choices"] = ["maybe"]
            expected.pop(-3)
        if n == 4:
            anns = []  # nobody labelled it
            del expected[-3:]
        if n == 5:  # completed_by as an object (older exports)
            anns[0]["completed_by"] = {"id": 1, "email": "ann@example.org"}
            expected[-3] = (tid, "ann@example.org", expected[-3][2])
        exported.append(
            {
                "id": n + 1,
                "data": task["data"],
                "annotations": anns,
                "predictions": [],
                "project": 7,
            }
        )
    exported.append(
        {
            "id": 999,
            "data": {"tamis_task": "tnot-ours", "text": "x"},
            "annotations": [_ls_annotation(1, "ham", "2026-11-01T10:00:00Z")],
        }
    )
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    out = import_annotations(sms_store, path, tool="label-studio", export=res["id"][:10])
    assert out["not_imported"] == {
        "unknown_items": 1,
        "duplicate_tasks": 0,
        "missing_items": 1,
        "unannotated_items": 1,
        "skipped": 1,
        "draft": 0,
        "malformed_results": 1,
        "unknown_labels": 1,
    }
    rows = sms_store.read(out["id"])
    got = sorted(zip(rows["task_id"], rows["annotator"], rows["label"], strict=True))
    assert got == sorted(expected)
    assert rows.height == out["annotations"] == len(expected)
    # gold flags and original columns come from the export record
    merged = rows.to_pandas().merge(
        pd.DataFrame(list(truth.values()))[["task_id", "is_gold", "text"]], on="task_id"
    )
    assert (merged["is_gold_x"] == merged["is_gold_y"]).all()
    assert (merged["text_x"] == merged["text_y"]).all()
    assert rows.schema["time"] == pl.Datetime("us", "UTC")
    assert rows.filter(pl.col("annotator") == "2")["time"].dt.day().unique().to_list() == [2]
    dropped = sms_store.table(out["id"], "dropped")
    assert dropped.height == sum(out["not_imported"].values())
    assert "orig_label" in rows.columns  # the item's own label kept, renamed beside the vote


def test_import_checks_the_export(sms_store: Store, tmp_path: Path) -> None:
    res = _export(sms_store, tmp_path / "ls")
    bad = tmp_path / "min.json"
    bad.write_text(json.dumps([{"tamis_task": "x", "label": "ham"}]))
    with pytest.raises(TamisError, match="JSON_MIN"):
        import_annotations(sms_store, bad, tool="label-studio", export=res["id"])
    with pytest.raises(TamisError, match="not argilla"):
        import_annotations(sms_store, bad, tool="argilla", export=res["id"])
    with pytest.raises(TamisError, match="not an annotation export"):
        import_annotations(sms_store, bad, tool="label-studio", export="t/items")


def test_cli_export_import_preference(store: Store, tmp_path: Path) -> None:
    put(store, _pairs(20), "t/pairs")
    to = tmp_path / "pref"
    export_args = ["export", "t/pairs", "--tool", "label-studio", "--task", "preference"]
    r = _annotate_cli(store, *export_args, "--to", str(to), "--json")
    assert r.exit_code == 0, r.output
    export_id = json.loads(r.stdout)["id"]
    tasks = _tasks(to)
    cfg = ET.fromstring((to / "label_config.xml").read_text())
    assert next(cfg.iter("Pairwise")).get("toName") == "a,b"
    # every annotator picks the text that says "good": the import maps back to `chosen`
    out = []
    for t in tasks:
        left = "good" in t["data"]["answer_a"]
        res = [
            {
                "from_name": "preference",
                "to_name": "a,b",
                "type": "pairwise",
                "value": {"selected": "left" if left else "right"},
            }
        ]
        out.append(
            {
                "id": 1,
                "data": t["data"],
                "annotations": [_ls_annotation(5, None, "2026-11-30T08:00:00Z", result=res)],
            }
        )
    swapped = sum("good" in t["data"]["answer_b"] for t in tasks)
    assert 0 < swapped < 20  # shown in a random order
    path = tmp_path / "ls_export.json"
    path.write_text(json.dumps(out))
    r = _annotate_cli(
        store, "import", str(path), "--from", "label-studio", "--export", export_id[:12], "--json"
    )
    assert r.exit_code == 0, r.output
    rows = store.read(json.loads(r.stdout)["id"])
    assert rows["label"].to_list() == ["chosen"] * 20
    r = _annotate_cli(store, *export_args, "--to", str(to))
    assert r.exit_code == 1 and "already exists" in r.output and "fix:" in r.output


@pytest.fixture
def argilla_client(monkeypatch: pytest.MonkeyPatch) -> Any:
    rg = pytest.importorskip("argilla")
    import argilla._api._client as api

    monkeypatch.setattr(api.APIClient, "_validate_connection", lambda self: None)
    monkeypatch.setattr(rg.Argilla, "_default_client", None, raising=False)
    client = rg.Argilla(api_url="http://argilla.invalid", api_key="offline")
    return rg, client


def test_argilla_round_trip_through_its_client(
    sms_store: Store, tmp_path: Path, argilla_client: Any
) -> None:
    import uuid

    rg, _client = argilla_client
    to = tmp_path / "rg"
    res, settings, records = _argilla_export(
        rg,
        sms_store,
        to,
        gold="t/gold",
        gold_share=0.05,
        overlap=2,
        id_col="id",
        suggest=True,
        suggest_col="label",
    )
    assert [q.name for q in settings.questions] == ["label"]
    assert settings.questions["label"].labels == ["ham", "spam"]
    assert settings.distribution.min_submitted == 2
    dataset_model = json.loads((to / ".argilla" / "dataset.json").read_text())
    from argilla._models import DatasetModel

    assert DatasetModel(**dataset_model).distribution.min_submitted == 2
    assert len(records) == res["tasks"]
    truth = _truth(sms_store, res["id"])
    users = [uuid.UUID(int=i) for i in (1, 2)]
    expected = []
    for n, rec in enumerate(records):
        row = truth[str(rec.id)]
        assert (
            rec.suggestions["label"].value == (row["label"] or row["gold_label"]) or row["is_gold"]
        )
        if n == 0:
            continue  # nobody answered
        for k, user in enumerate(users):
            status = "discarded" if (n == 1 and k == 1) else "submitted"
            value = row["label"] or row["gold_label"]
            rec.responses.add(rg.Response("label", value, user_id=user, status=status))
            if status == "submitted":
                expected.append((str(rec.id), str(user), value))
    exported = [r.to_dict() for r in records]
    # Record.to_dict keeps value and user_id only: say which ones were discarded, as the API does
    exported[1]["responses"]["label"][1]["status"] = "discarded"
    path = tmp_path / "records_out.json"
    path.write_text(json.dumps(exported))
    out = import_annotations(sms_store, path, tool="argilla", export=res["id"])
    assert out["not_imported"]["unannotated_items"] == 1
    assert out["not_imported"]["skipped"] == 1
    assert sum(out["not_imported"].values()) == 2
    rows = sms_store.read(out["id"])
    assert sorted(zip(rows["task_id"], rows["annotator"], rows["label"], strict=True)) == sorted(
        expected
    )
    assert rows.filter(pl.col("is_gold")).height == sum(truth[t]["is_gold"] for t, _, _ in expected)
    assert res["gold_items"] == math.ceil(0.05 * 100 / 0.95)


def test_loop_import_then_pipeline_aggregates(sms_store: Store, tmp_path: Path) -> None:
    """export -> tool export -> import --ref -> a pipeline reading "@ref" runs aggregate_labels,
    consensus and active_learning on it (the documented loop)."""
    import yaml

    from tamis.pipelines.runner import build

    res = _gold_export(sms_store, tmp_path / "ls", gold_share=0.2, overlap=3)
    truth = _truth(sms_store, res["id"])
    flip = {"ham": "spam", "spam": "ham"}
    exported = []
    for n, task in enumerate(_tasks(tmp_path / "ls")):
        row = truth[task["data"]["tamis_task"]]
        true = row["label"] or row["gold_label"]
        anns = [
            _ls_annotation(
                who,
                flip[true] if (who == 3 and n % 3 == 0) else true,
                f"2026-11-{1 + n % 20:02d}T10:00:00Z",
            )
            for who in (1, 2, 3)
        ]
        exported.append({"id": n, "data": task["data"], "annotations": anns})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    imp = import_annotations(
        sms_store, path, tool="label-studio", export=res["id"], ref="annotations/batch1"
    )
    spec = {
        "name": "rate",
        "steps": {
            "raters": {
                "use": "aggregate_labels",
                "input": "@annotations/batch1",
                "params": {
                    "gold": "gold_label",
                    "time": "time",
                    "window": "1w",
                    "min_window_items": 3,
                },
            },
            "labels": {
                "use": "consensus",
                "input": "@annotations/batch1",
                "params": {
                    "method": "majority",
                    "gold": "gold_label",
                    "time": "time",
                    "window": "1w",
                    "min_window_items": 3,
                },
            },
        },
    }
    (tmp_path / "rate.yaml").write_text(yaml.safe_dump(spec))
    build(tmp_path / "rate.yaml", sms_store)
    raters = sms_store.table("rate/raters", "raters").to_pandas().set_index("annotator")
    rows = sms_store.read(imp["id"]).to_pandas()
    gold = rows[rows["is_gold"]]
    want = (gold["label"] == gold["gold_label"]).groupby(gold["annotator"]).mean()
    assert np.allclose(raters.loc[want.index, "gold_accuracy"], want)
    assert raters.loc["3", "gold_accuracy"] < 1.0 == raters.loc["1", "gold_accuracy"]
    labels = sms_store.read("rate/labels")
    assert labels.height == res["tasks"] and "text" in labels.columns
    # the consensus labels written back onto the items are the truth (2 of 3 raters are right)
    cons = dict(zip(labels["item"], labels["label"], strict=True))
    assert all(cons[r["item"]] == (r["label"] or r["gold_label"]) for r in truth.values())


def test_argilla_rating_and_preference_through_its_client(
    store: Store, tmp_path: Path, argilla_client: Any
) -> None:
    import uuid

    rg, _client = argilla_client
    put(store, _pairs(12), "t/pairs")
    user = uuid.UUID(int=9)
    # rating: scale 1..4 on the chosen answer
    res, settings, records = _argilla_export(
        rg, store, tmp_path / "rate", "t/pairs", task="rating", fields=["chosen"], scale=4
    )
    assert settings.questions["rating"].values == [1, 2, 3, 4]
    for n, rec in enumerate(records):
        rec.responses.add(rg.Response("rating", 1 + n % 4, user_id=user))
    exported = [r.to_dict() for r in records]
    exported[0]["responses"]["rating"][0]["value"] = 2.5  # not a rating
    (tmp_path / "r.json").write_text(json.dumps(exported))
    out = import_annotations(store, tmp_path / "r.json", tool="argilla", export=res["id"])
    assert out["not_imported"]["malformed_results"] == 1
    rows = store.read(out["id"])
    assert rows.schema["label"] == pl.Int64 and rows.height == 11
    assert sorted(rows["label"].to_list()) == sorted(1 + n % 4 for n in range(1, 12))
    # preference: a/b shown in a random order, mapped back to chosen/rejected
    res, settings, records = _argilla_export(
        rg, store, tmp_path / "pref", "t/pairs", task="preference"
    )
    assert settings.questions["preference"].labels == ["a", "b"]
    assert [f.name for f in settings.fields] == ["prompt", "answer_a", "answer_b"]
    for rec in records:
        pick = "a" if "good" in rec.fields["answer_a"] else "b"
        rec.responses.add(rg.Response("preference", pick, user_id=user))
    (tmp_path / "p.json").write_text(json.dumps([r.to_dict() for r in records]))
    out = import_annotations(store, tmp_path / "p.json", tool="argilla", export=res["id"])
    assert store.read(out["id"])["label"].to_list() == ["chosen"] * 12


def test_cli_import_out_file_and_counts(sms_store: Store, tmp_path: Path) -> None:
    res = _export(sms_store, tmp_path / "ls", id_col="id")
    tasks = _tasks(tmp_path / "ls")
    exported = [
        {
            "id": n,
            "data": t["data"],
            "annotations": [_ls_annotation(7, "ham", "2026-11-02T10:00:00Z")] if n % 2 else [],
        }
        for n, t in enumerate(tasks)
    ]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(exported))
    out = tmp_path / "ann.parquet"
    args = ["import", str(path), "--from", "label-studio", "--export", res["id"][:12]]
    r = _annotate_cli(sms_store, *args, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert "imported 50 annotations on 50 of 100 items" in r.output
    assert "unannotated_items 50" in r.output and "unannotated_items: task t" in r.output
    assert pl.read_parquet(out).height == 50
    before = out.read_bytes()
    r = _annotate_cli(
        sms_store, *args, "--out", str(out)
    )  # --out exists: refused, the file is untouched
    assert r.exit_code == 1 and "already exists" in r.output and out.read_bytes() == before


def test_label_studio_suggestions_and_rating_config(sms_store: Store, tmp_path: Path) -> None:
    items = sms_store.read("t/items").with_columns(
        pl.col("label").alias("suggested_label"),
        pl.Series("suggested_score", [0.5 + i / 200 for i in range(100)]),
    )
    put(sms_store, items, "t/suggested")
    res = _export(
        sms_store,
        tmp_path / "s",
        "t/suggested",
        id_col="id",
        suggest=True,
        suggest_score="suggested_score",
    )
    tasks = _tasks(tmp_path / "s")
    record = _truth(sms_store, res["id"])
    for t in tasks:
        row = record[t["data"]["tamis_task"]]
        (pred,) = t["predictions"]
        assert pred["score"] == pytest.approx(row["suggested_score"])
        (result,) = pred["result"]
        assert result["value"] == {"choices": [row["suggested_label"]]}
        assert (result["from_name"], result["to_name"], result["type"]) == (
            "label",
            "f_text",
            "choices",
        )
    with pytest.raises(TamisError, match="gold items need a suggestion"):
        _export(sms_store, tmp_path / "g", "t/suggested", id_col="id", suggest=True, gold="t/gold")
    assert not (tmp_path / "g").exists()
    _export(
        sms_store, tmp_path / "r", task="rating", scale=7, fields=["text", "label"], id_col="id"
    )
    cfg = ET.fromstring((tmp_path / "r" / "label_config.xml").read_text())
    (rating,) = list(cfg.iter("Rating"))
    assert rating.get("maxRating") == "7" and rating.get("toName") == "f_text"
    assert [t.get("value") for t in cfg.iter("Text")] == ["$text", "$label"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK calls pydantic's .dict()
@pytest.mark.parametrize("task", ["classification", "rating", "preference"])
def test_label_studio_round_trip_through_its_sdk(store: Store, tmp_path: Path, task: str) -> None:
    """label-studio-sdk 1.0 (dev extra) parses the config, accepts every task and prediction,
    and makes the annotation results the import reads."""
    sdk = pytest.importorskip("label_studio_sdk.label_interface")
    frame = pl.DataFrame(
        {
            "item": [f"i{i}" for i in range(16)],
            "text": [f"message {i}" for i in range(16)],
            "label": ["ham", "spam"] * 8,
            "prompt": [f"q{i}?" for i in range(16)],
            "chosen": [f"good {i}" for i in range(16)],
            "rejected": [f"bad {i}" for i in range(16)],
            "suggested_label": (
                ["chosen", "rejected"] * 8
                if task == "preference"
                else ["3", "4"] * 8
                if task == "rating"
                else ["ham", "spam"] * 8
            ),
        }
    )
    put(store, frame, "t/sdk")
    fields = None if task == "preference" else ["text"]
    res = _export(store, tmp_path / "ls", "t/sdk", task=task, fields=fields, suggest=True)
    li = sdk.LabelInterface((tmp_path / "ls" / "label_config.xml").read_text())
    record = _truth(store, res["id"])
    tasks = _tasks(tmp_path / "ls")
    control = li.get_control(task if task != "classification" else "label")
    exported, expected = [], []
    for n, t in enumerate(tasks):
        assert li.validate_task({"data": t["data"]})
        if task != "preference":  # the SDK's validator rejects its own Pairwise regions
            assert li.validate_prediction(t["predictions"][0])
        row = record[t["data"]["tamis_task"]]
        if task == "classification":
            region, want = control.label([row["label"]]), row["label"]
        elif task == "rating":
            region, want = control.label(1 + n % 5), 1 + n % 5
        else:
            left = "good" in t["data"]["answer_a"]
            region, want = control.label("left" if left else "right"), "chosen"
        result = json.loads(region.to_json())
        if task != "preference":
            assert li.validate_annotation({"result": [result]})
        exported.append(
            {
                "id": n,
                "data": t["data"],
                "annotations": [
                    _ls_annotation(3, None, "2026-11-30T08:00:00.000000Z", result=[result])
                ],
            }
        )
        expected.append((t["data"]["tamis_task"], want))
    path = tmp_path / "sdk_export.json"
    path.write_text(json.dumps(exported))
    out = import_annotations(store, path, tool="label-studio", export=res["id"])
    assert sum(out["not_imported"].values()) == 0
    rows = store.read(out["id"])
    assert sorted(zip(rows["task_id"], rows["label"], strict=True)) == sorted(expected)


def test_items_columns_named_like_the_record_are_kept(store: Store, tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "item": ["a", "b", "c"],
            "text": ["x", "y", "z"],
            "gold_label": ["ham", None, "spam"],  # the user's own column
            "position": [10, 20, 30],
        }
    )
    put(store, frame, "t/clash")
    res = _export(store, tmp_path / "c", "t/clash", labels=["ham", "spam"])
    record = store.read(res["id"]).sort("item")
    assert record["orig_gold_label"].to_list() == ["ham", None, "spam"]
    assert record["orig_position"].to_list() == [10, 20, 30]
    assert record["gold_label"].null_count() == 3 and not record["is_gold"].any()
