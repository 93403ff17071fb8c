"""The sweep engine: grid planning, resumable cells, parallel cells, errors with context."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from tamis.errors import SpecError, TamisError
from tamis.pipelines.store import Store
from tamis.sweeps import run_sweep
from tamis.sweeps.spec import load_sweep, parse_sweep


@pytest.fixture
def iris(iris_sweep: dict[str, Any]) -> dict[str, Any]:
    """The iris sweep with a fixed-seed split and two versions (`full`; `small`, 12 rows drawn per
    seed), three seeds, `full` as the baseline."""
    steps = iris_sweep["pipeline"]["steps"]
    steps["split"]["seed"] = 0
    steps["small"] = {
        "use": "sample",
        "input": "split.train",
        "params": {"n": 12, "stratify": "target"},
    }
    return {
        **iris_sweep,
        "name": "iris_sizes",
        "recipe": {"use": "classifier", "params": {"target": "target", "C": 0.5}},
        "seeds": [0, 1, 2],
        "baseline": "full",
        "versions": {"full": "split.train", "small": "small"},
        "n_boot": 1000,
    }


def spec(iris: dict[str, Any], **changes: Any) -> Any:
    data = copy.deepcopy(iris)
    data.update(changes)
    return parse_sweep(data, file="iris.yaml")


def test_grid_resume_force_and_parallel(tmp_path: Path, iris: dict[str, Any]) -> None:
    store = Store(tmp_path / "s")
    first = run_sweep(spec(iris), store, report=False)
    assert first["computed"] == 6
    # versions built per seed: `full` (fixed-seed split) is one version, `small` differs per seed
    assert len(set(first["versions"]["full"]["ids"].values())) == 1
    assert len(set(first["versions"]["small"]["ids"].values())) == 3
    assert len(set(first["test_ids"].values())) == 1
    small_acc = next(
        r for r in first["table"] if r["version"] == "small" and r["metric"] == "accuracy"
    )
    assert small_acc["sd"] > 0 and small_acc["delta"] is not None

    # an interrupted sweep resumes: only the missing cell is trained again
    victim = first["cells"][4]
    (store.runs_dir / "cells" / victim["key"] / "result.json").unlink()
    resumed = run_sweep(spec(iris), store, report=False)
    assert resumed["computed"] == 1 and resumed["table"] == first["table"]

    # a changed recipe param is a new cell key: every cell runs again
    changed = run_sweep(
        spec(iris, recipe={"use": "classifier", "params": {"target": "target", "C": 0.1}}),
        store,
        report=False,
    )
    assert changed["computed"] == 6 and changed["sweep_id"] != first["sweep_id"]
    forced = run_sweep(spec(iris), store, report=False, force=True)
    assert forced["computed"] == 6 and forced["table"] == first["table"]

    # two worker processes give the same cells as one
    par = run_sweep(spec(iris, seeds=[0, 1]), Store(tmp_path / "p"), jobs=2, report=False)
    assert par["computed"] == 4
    by_key = {c["key"]: c["metrics"] for c in first["cells"]}
    assert all(by_key[c["key"]] == c["metrics"] for c in par["cells"])


def test_versions_from_store_refs(tmp_path: Path, iris: dict[str, Any]) -> None:
    store = Store(tmp_path / "s")
    run_sweep(spec(iris), store, report=False)  # leaves refs iris_sizes-seed0/split.train etc.
    data = copy.deepcopy(iris)
    data.update(
        versions={"a": "@iris_sizes-seed0/split.train", "b": "@iris_sizes-seed1/small"},
        test={"ref": "iris_sizes-seed0/split.test"},
        baseline="a",
        seeds=[0, 1],
    )
    del data["pipeline"], data["datasets"]
    out = run_sweep(parse_sweep(data), store, report=False)
    # a/seed0, a/seed1 and b/seed1 are the same computations as cells of the first sweep
    assert out["computed"] == 1 and out["skipped"] == 3
    assert out["versions"]["a"]["ids"]["0"] == out["versions"]["a"]["ids"]["1"]


def test_spec_errors_name_the_field_and_fix(tmp_path: Path, iris: dict[str, Any]) -> None:
    store = Store(tmp_path / "s")
    with pytest.raises(SpecError, match="unknown recipe") as exc:
        run_sweep(spec(iris, recipe={"use": "clasifier"}), store)
    assert "classifier" in (exc.value.fix or "")
    with pytest.raises(SpecError) as exc:
        run_sweep(spec(iris, recipe={"use": "classifier", "params": {"targt": "x"}}), store)
    assert exc.value.field == "versions.full.params.targt" and "target" in (exc.value.fix or "")
    with pytest.raises(SpecError, match="baseline 'nope'"):
        spec(iris, baseline="nope")
    with pytest.raises(SpecError, match="exactly one"):
        spec(iris, versions={"a": {"step": "small", "ref": "x"}})
    with pytest.raises(SpecError) as exc:
        spec(iris, bogus=1)
    assert "valid keys" in (exc.value.fix or "")
    with pytest.raises(SpecError, match="does not produce") as exc:
        run_sweep(spec(iris, versions={"full": "split.train", "x": "split.nope"}), store)
    assert "split.train" in (exc.value.fix or "")
    with pytest.raises(SpecError, match="no sweep file or built-in"):
        load_sweep("no_such_sweep")
    with pytest.raises(SpecError, match="needs a fixed test set"):
        run_sweep(spec(iris, test=None), store)


def test_a_failing_cell_names_itself_and_keeps_finished_cells(
    tmp_path: Path, iris: dict[str, Any]
) -> None:
    store = Store(tmp_path / "s")
    bad = copy.deepcopy(iris)
    bad["versions"] = {
        "full": "split.train",
        "small": {"step": "small", "params": {"features": ["nope"]}},
    }
    with pytest.raises(TamisError, match=r"cell small / seed 0.*3 of 6 cells failed") as exc:
        run_sweep(parse_sweep(bad), store, report=False)
    assert exc.value.column == "nope"
    done = list((store.runs_dir / "cells").glob("*/result.json"))
    assert len(done) == 3  # the `full` cells finished and are kept for the rerun
    failed = store.catalog.query("SELECT status FROM runs WHERE kind = 'sweep'")
    assert [r["status"] for r in failed] == ["failed"]


def test_cli_list_usage_and_errors(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from tamis.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["sweep", "--list", "--json"])
    assert listed.exit_code == 0
    names = {r["name"] for r in json.loads(listed.stdout)["builtin"]}
    assert {"label_noise", "synthetic", "preferences"} <= names
    assert runner.invoke(app, ["sweep"]).exit_code == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nrecipe: {use: classifier}\nversions: {a: '@nope/ref'}\nbaselin: a\n")
    res = runner.invoke(app, ["sweep", str(bad), "--store", str(tmp_path / "s"), "--json"])
    assert res.exit_code == 1
    doc = json.loads(res.stdout)
    assert doc["field"] == "baselin" and "baseline" in doc["fix"]
    res = runner.invoke(app, ["sweep", "label_noise", "--seeds", "a,b", "--store", str(tmp_path)])
    assert res.exit_code == 1 and "--seeds" in res.output


def test_option_overrides() -> None:
    """`--seeds` and `--set` become spec overrides (YAML values); bad ones are clear errors."""
    from tamis.sweeps.spec import overrides_of

    got = overrides_of("0..2", ["recipe.params.model=gbm", "n_boot=100", "recipe.params.C=0.5"])
    assert got == {
        "seeds": [0, 1, 2],
        "recipe": {"params": {"model": "gbm", "C": 0.5}},
        "n_boot": 100,
    }
    assert overrides_of("3,5", None) == {"seeds": [3, 5]}
    with pytest.raises(SpecError, match="has no '='") as exc:
        overrides_of(None, ["recipe.params.model"])
    assert exc.value.field == "--set"
    with pytest.raises(SpecError, match="cannot read --seeds"):
        overrides_of("0..x", None)
    with pytest.raises(SpecError, match="not valid YAML") as exc:
        overrides_of(None, ["recipe.params.features=[a"])
    assert exc.value.field == "--set" and "quote" in (exc.value.fix or "")
    spec = load_sweep("label_noise", overrides_of("0,1", ["recipe.params.model=gbm"]))
    assert spec.seeds == [0, 1] and spec.recipe.params["model"] == "gbm"
