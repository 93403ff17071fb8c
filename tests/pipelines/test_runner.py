from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tamis.errors import DataError, SpecError, StepError
from tamis.pipelines import runner
from tamis.pipelines.runner import build, run_step
from tamis.pipelines.store import Store


def test_build_writes_versions_refs_and_lineage(pipeline_dir: Path, store: Store) -> None:
    result = build(pipeline_dir / "pipeline.yaml", store)
    assert [s.status for s in result.steps] == ["built"] * 5
    assert set(result.versions) == {
        "fair",
        "clean",
        "adults",
        "parts.train",
        "parts.test",
        "small",
        "boot",
    }
    adults = store.read("p/adults")
    assert adults["age"].min() >= 22
    train, test = store.read("p/parts.train"), store.read("p/parts.test")
    assert train.height + test.height == adults.height
    assert abs(train.height / adults.height - 0.75) < 0.001
    assert store.read("p/small").height == 500
    manifest = store.manifest("p/small")
    assert manifest["parents"] == [{"id": result.versions["parts.train"]["id"], "role": "input"}]
    assert manifest["step"]["params"]["n"] == 500 and manifest["seed"] == 7
    assert manifest["rows"] == 500 and len(manifest["content_hash"]) == 64
    assert {c["name"] for c in manifest["schema"]} == set(adults.columns)
    lin = store.lineage("p/boot")
    names = {n["name"] for n in lin["nodes"]}
    assert names == {"p/boot", "p/small", "p/parts.train", "p/adults", "p/clean", "p/fair"}
    # prefixes and ids resolve to the same version
    vid = result.versions["small"]["id"]
    assert store.resolve(vid[:10]) == vid == store.resolve(vid) == store.resolve("p/small")


def test_same_inputs_params_seed_give_same_ids(pipeline_dir: Path, tmp_path: Path) -> None:
    a = build(pipeline_dir / "pipeline.yaml", Store(tmp_path / "a"))
    b = build(pipeline_dir / "pipeline.yaml", Store(tmp_path / "b"))
    assert {k: v["id"] for k, v in a.versions.items()} == {
        k: v["id"] for k, v in b.versions.items()
    }
    assert {k: v["content_hash"] for k, v in a.versions.items()} == {
        k: v["content_hash"] for k, v in b.versions.items()
    }
    # a different seed changes the random steps and everything downstream, not the rest
    spec = yaml.safe_load((pipeline_dir / "pipeline.yaml").read_text())
    spec["seed"] = 8
    (pipeline_dir / "other.yaml").write_text(yaml.safe_dump(spec))
    c = build(pipeline_dir / "other.yaml", Store(tmp_path / "a"))
    assert c.versions["fair"]["id"] == a.versions["fair"]["id"]
    assert c.versions["clean"]["id"] != a.versions["clean"]["id"]  # seed is part of every key
    assert c.versions["small"]["content_hash"] != a.versions["small"]["content_hash"]


def test_rebuild_hits_cache_and_force_recomputes(
    pipeline_dir: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = build(pipeline_dir / "pipeline.yaml", store)
    calls: list[str] = []
    real = runner._call

    def spy(step: Any, *args: Any, **kw: Any) -> Any:
        calls.append(step.name)
        return real(step, *args, **kw)

    monkeypatch.setattr(runner, "_call", spy)
    again = build(pipeline_dir / "pipeline.yaml", store)
    assert calls == [] and [s.status for s in again.steps] == ["cached"] * 5
    assert {k: v["id"] for k, v in again.versions.items()} == {
        k: v["id"] for k, v in first.versions.items()
    }
    forced = build(pipeline_dir / "pipeline.yaml", store, force=["small"])
    assert calls == ["sample"]
    assert [s.status for s in forced.steps] == ["cached", "cached", "cached", "rebuilt", "cached"]
    assert not forced.steps[3].warnings  # deterministic: same content
    # changing one step's params changes its key and everything downstream, nothing upstream
    spec = yaml.safe_load((pipeline_dir / "pipeline.yaml").read_text())
    spec["steps"]["small"]["params"]["n"] = 400
    (pipeline_dir / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    calls.clear()
    third = build(pipeline_dir / "pipeline.yaml", store)
    assert calls == ["sample", "sample"]
    assert [s.status for s in third.steps] == ["cached", "cached", "cached", "built", "built"]


def test_a_step_that_raises_leaves_no_version_and_the_rebuild_resumes(
    pipeline_dir: Path, store: Store, build_failing_at: Any
) -> None:
    build_failing_at(pipeline_dir / "pipeline.yaml", store, "small")
    refs = {r for v in store.list_versions() for r in v["refs"]}
    assert "p/parts.train" in refs and "p/small" not in refs and "p/boot" not in refs
    assert len(list(store.versions_dir.iterdir())) == 5  # fair, clean, adults, train, test
    assert not any(store.tmp_dir.iterdir())  # no half-written version left behind
    runs = store.catalog.query("SELECT status FROM runs")
    assert [r["status"] for r in runs] == ["failed"]
    result = build(pipeline_dir / "pipeline.yaml", store)
    assert [s.status for s in result.steps] == ["cached", "cached", "cached", "built", "built"]


def test_version_on_disk_but_not_in_catalog_is_healed(pipeline_dir: Path, store: Store) -> None:
    result = build(pipeline_dir / "pipeline.yaml", store)
    vid = result.versions["boot"]["id"]
    with store.catalog.connect(write=True) as con:  # simulate a crash before the catalog row
        con.execute("DELETE FROM versions WHERE id = ?", [vid])
    assert not store.catalog.query("SELECT id FROM versions WHERE id = ?", [vid])
    again = build(pipeline_dir / "pipeline.yaml", store)
    assert again.steps[-1].status == "cached"
    assert store.catalog.query("SELECT id FROM versions WHERE id = ?", [vid])


def test_targets_build_only_what_they_need(pipeline_dir: Path, store: Store) -> None:
    result = build(pipeline_dir / "pipeline.yaml", store, targets=["adults"])
    assert [s.name for s in result.steps] == ["clean", "adults"]


def _write(tmp: Path, spec: dict[str, Any]) -> Path:
    path = tmp / "bad.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_spec_errors_name_file_step_field_and_choices(pipeline_dir: Path, store: Store) -> None:
    base = {"name": "p", "sources": {"fair": {"path": "fair.csv"}}}
    bad_use = _write(pipeline_dir, {**base, "steps": {"x": {"use": "dedupe", "input": "fair"}}})
    with pytest.raises(SpecError) as e:
        build(bad_use, store)
    assert e.value.step == "x" and e.value.field == "use" and "bad.yaml" in (e.value.file or "")
    assert "valid step types" in (e.value.fix or "") and "normalize" in (e.value.fix or "")
    bad_param = _write(
        pipeline_dir,
        {
            **base,
            "steps": {"x": {"use": "sample", "input": "fair", "params": {"n": 5, "seeed": 1}}},
        },
    )
    with pytest.raises(SpecError) as e:
        build(bad_param, store)
    assert e.value.step == "x" and "seeed" in (e.value.field or "")
    assert "with_replacement" in (e.value.fix or "")
    bad_input = _write(pipeline_dir, {**base, "steps": {"x": {"use": "sample", "input": "nope"}}})
    with pytest.raises(SpecError, match="names no source or step"):
        build(bad_input, store)
    cycle = _write(
        pipeline_dir,
        {
            **base,
            "steps": {
                "a": {"use": "sample", "input": "b", "params": {"n": 1}},
                "b": {"use": "sample", "input": "a", "params": {"n": 1}},
            },
        },
    )
    with pytest.raises(SpecError, match="cycle"):
        build(cycle, store)
    top = _write(pipeline_dir, {**base, "stepz": {}})
    with pytest.raises(SpecError) as e:
        build(top, store)
    assert e.value.field == "stepz" and "steps" in (e.value.fix or "")
    (pipeline_dir / "broken.yaml").write_text("name: p\nsteps: [unclosed\n")
    with pytest.raises(SpecError, match="line"):
        build(pipeline_dir / "broken.yaml", store)
    bare = _write(
        pipeline_dir,
        {
            **base,
            "steps": {
                "s": {"use": "split", "input": "fair"},
                "t": {"use": "sample", "input": "s", "params": {"n": 3}},
            },
        },
    )
    with pytest.raises(SpecError) as e:
        build(bare, store)
    assert "s.train" in (e.value.fix or "")
    missing = _write(pipeline_dir, {"name": "p", "sources": {"f": {"path": "nope.csv"}}})
    with pytest.raises(SpecError) as e:
        build(missing, store)
    assert e.value.field == "sources.f.path"


def test_step_errors_name_the_column(fair: pl.DataFrame) -> None:
    with pytest.raises(StepError) as e:
        run_step("split", {"input": fair}, {"stratify": "nope"})
    assert e.value.column == "nope" and "age" in (e.value.fix or "")
    with pytest.raises(StepError) as e:
        run_step("normalize", {"input": fair}, {"cast": {"age": "decimal"}})
    assert "dtypes" in (e.value.fix or "")


def test_builtin_steps(fair: pl.DataFrame) -> None:
    raw = pl.DataFrame({" a ": [" 1", " 2", "?", "4 "], "b": ["x ", " y", "NA", "z"]})
    out = run_step("normalize", {"input": raw}, {"null_values": ["?", "NA"]}).frames["data"]
    assert out.columns == ["a", "b"] and out.schema["a"] == pl.Int64
    assert out["a"].to_list() == [1, 2, None, 4] and out["b"].to_list() == ["x", "y", None, "z"]
    labelled = fair.with_columns(
        (pl.col("affairs") > 0).cast(pl.Int8).alias("y"), (pl.int_range(pl.len()) % 300).alias("g")
    )
    parts = run_step(
        "split", {"input": labelled}, {"fractions": {"a": 0.5, "b": 0.3, "c": 0.2}, "stratify": "y"}
    ).frames
    share = {k: v["y"].mean() for k, v in parts.items()}
    assert max(share.values()) - min(share.values()) < 0.01  # stratified
    grouped = run_step("split", {"input": labelled}, {"group": "g"}).frames
    assert set(grouped["train"]["g"]).isdisjoint(set(grouped["test"]["g"]))  # no group leakage
    q = run_step(
        "filter", {"input": fair}, {"query": "SELECT age, count(*) AS n FROM input GROUP BY age"}
    ).frames["data"]
    assert q["n"].sum() == fair.height
    s1 = run_step("sample", {"input": fair}, {"n": 100}, seed=3).frames["data"]
    s2 = run_step("sample", {"input": fair}, {"n": 100}, seed=3).frames["data"]
    assert s1.equals(s2)


def test_manifest_is_human_readable_json(pipeline_dir: Path, store: Store) -> None:
    result = build(pipeline_dir / "pipeline.yaml", store)
    path = store.version_dir(result.versions["clean"]["id"]) / "manifest.json"
    text = path.read_text()
    assert "\n  " in text  # indented
    data = json.loads(text)
    for key in (
        "id",
        "name",
        "created_at",
        "parents",
        "step",
        "seed",
        "schema",
        "rows",
        "content_hash",
        "tamis_version",
        "report",
    ):
        assert key in data


def test_step_errors_name_the_users_step_not_the_step_type(tmp_path: Path, store: Store) -> None:
    """Capabilities name their step type by default; the error must name the pipeline's step."""
    pl.DataFrame({"x": [1, 2, 3], "y": ["a", "a", "a"]}).write_csv(tmp_path / "d.csv")
    spec = {
        "name": "p",
        "sources": {"d": {"path": "d.csv"}},
        "steps": {"noisy": {"use": "inject_label_noise", "input": "d", "params": {"label": "y"}}},
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DataError) as info:  # the capability's DataError, named by the runner
        build(tmp_path / "p.yaml", store)
    assert info.value.step == "noisy" and "step 'noisy'" in str(info.value)


def test_every_step_is_checked_when_the_yaml_loads() -> None:
    """Type, params, input names, lists and `step.output` are checked by `parse_pipeline`,
    before any source is read or any step runs (the source path does not even exist)."""
    from tamis.pipelines.spec import InputRef, parse_pipeline

    base = {"name": "p", "sources": {"d": {"path": "absent.csv"}}}

    def error(steps: dict[str, Any]) -> SpecError:
        with pytest.raises(SpecError) as e:
            parse_pipeline({**base, "steps": steps}, file="p.yaml")
        return e.value

    e = error({"x": {"use": "sample", "input": "d", "params": {"n": "many"}}})
    assert e.step == "x" and e.field == "params.n" and e.file == "p.yaml"
    e = error({"x": {"use": "sample", "input": "d", "agianst": "d", "params": {"n": 1}}})
    assert "takes no input 'agianst'" in str(e) and "input" in (e.fix or "")
    e = error({"x": {"use": "leakage", "against": "d"}})
    assert "missing input 'input'" in str(e)
    e = error({"x": {"use": "sample", "input": ["d", "d"], "params": {"n": 1}}})
    assert "not a list" in str(e) and e.field == "input"
    e = error(
        {
            "s": {"use": "split", "input": "d"},
            "t": {"use": "sample", "input": "s.trian", "params": {"n": 1}},
        }
    )
    assert e.step == "t" and "s.train" in (e.fix or "") and "s.test" in (e.fix or "")
    e = error({"x": {"use": "sample", "input": "nope.data", "params": {"n": 1}}})
    assert "names no source or step" in str(e)
    spec = parse_pipeline(
        {
            **base,
            "steps": {
                "s": {"use": "split", "input": "d"},
                "l": {"use": "leakage", "input": "s.train", "against": ["s.test", "@p/old"]},
            },
        }
    )
    planned = spec.plan()["l"]
    assert planned.inputs["input"] == InputRef("s.train", "step", "s", "train")
    assert planned.inputs["against"] == [
        InputRef("s.test", "step", "s", "test"),
        InputRef("@p/old", "store", "p/old"),
    ]
    assert planned.upstream() == {"s"} and spec.plan()["s"].outputs[:2] == ("train", "test")
