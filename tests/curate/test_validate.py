"""validate: GX expectations from YAML or a suite file, warn/fail gates, suggest mode, runner."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from tamis.curate.starter_suite import suggest_suite
from tamis.curate.validate import ValidateConfig, validate_frame
from tamis.errors import DataError, GateFailed, StoreError
from tamis.pipelines.runner import build, run_step
from tamis.pipelines.store import Store


@pytest.fixture(scope="module")
def frame(request: pytest.FixtureRequest) -> pl.DataFrame:
    from statsmodels.datasets import fair

    return pl.from_pandas(fair.load_pandas().data)


def test_pass_warn_and_fail(frame: pl.DataFrame) -> None:
    good = [
        {"expect_column_values_to_not_be_null": {"column": "age"}},
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "age", "min_value": 17, "max_value": 43},
        },
    ]
    rep = validate_frame(frame, ValidateConfig(expectations=good))
    assert rep["success"] and rep["evaluated"] == 2 and rep["failed"] == 0
    bad = [
        *good,
        {
            "expect_column_values_to_be_between": {
                "column": "yrs_married",
                "min_value": 0,
                "max_value": 10,
            }
        },
    ]
    rep = validate_frame(frame, ValidateConfig(expectations=bad, on_failure="warn"))
    assert not rep["success"] and rep["failed_expectations"] == [
        "expect_column_values_to_be_between(yrs_married)"
    ]
    failed = next(r for r in rep["results"] if not r["success"])
    assert failed["observed"]["unexpected_count"] == int((frame["yrs_married"] > 10).sum())
    json.dumps(rep)  # JSON-able for the manifest
    with pytest.raises(GateFailed, match=r"expect_column_values_to_be_between\(yrs_married\)") as e:
        validate_frame(frame, ValidateConfig(expectations=bad, on_failure="fail"))
    assert e.value.exit_code == 3 and e.value.failed[0]["kwargs"]["column"] == "yrs_married"


def test_missing_column_and_unknown_expectation(frame: pl.DataFrame) -> None:
    rep = validate_frame(
        frame,
        ValidateConfig(
            expectations=[
                {"expect_column_to_exist": {"column": "nope"}},
                {"expect_column_values_to_not_be_null": {"column": "nope"}},
            ],
            on_failure="warn",
        ),
    )
    assert rep["failed"] == 2
    with pytest.raises(DataError, match="did you mean expect_column_values_to_be_between"):
        validate_frame(
            frame,
            ValidateConfig(expectations=[{"expect_column_values_to_be_betwen": {"column": "a"}}]),
        )
    with pytest.raises(DataError, match="no expectations"):
        validate_frame(frame, ValidateConfig())


def test_suggest_then_validate_roundtrip(frame: pl.DataFrame, tmp_path: Path) -> None:
    df = frame.with_columns(
        pl.when(pl.col("age") > 40).then(None).otherwise(pl.col("age")).alias("age"),
        pl.lit("x").alias("tag"),
    )
    out = run_step(
        "validate",
        {"input": df},
        {"mode": "suggest", "suggest_out": str(tmp_path / "s.json")},
        artifacts_dir=tmp_path,
    )
    assert out.frames["data"].equals(df)
    suite = json.loads((tmp_path / "suite.json").read_text())
    assert suite == json.loads((tmp_path / "s.json").read_text())
    kinds = {(e["type"], e["kwargs"].get("column")) for e in suite["expectations"]}
    assert ("expect_column_values_to_be_in_set", "tag") in kinds
    assert ("expect_column_values_to_be_between", "yrs_married") in kinds
    null_age = [
        e
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_not_be_null" and e["kwargs"]["column"] == "age"
    ]
    assert 0 < null_age[0]["kwargs"]["mostly"] < 1
    # the starter suite passes on the data it came from, and catches a change
    rep = validate_frame(df, ValidateConfig(suite=str(tmp_path / "suite.json")))
    assert rep["success"] and rep["evaluated"] == len(suite["expectations"])
    with pytest.raises(GateFailed, match="tag"):
        validate_frame(
            df.with_columns(pl.lit("y").alias("tag")),
            ValidateConfig(suite=str(tmp_path / "suite.json")),
        )


def test_failing_gate_stops_build_and_writes_no_version(
    frame: pl.DataFrame, tmp_path: Path
) -> None:
    frame.write_csv(tmp_path / "fair.csv")
    spec = {
        "name": "gx",
        "sources": {"fair": {"path": "fair.csv"}},
        "steps": {
            "check": {
                "use": "validate",
                "input": "fair",
                "params": {
                    "on_failure": "fail",
                    "expectations": [
                        {"expect_column_values_to_not_be_null": {"column": "age"}},
                        {
                            "expect_column_max_to_be_between": {
                                "column": "yrs_married",
                                "max_value": 10,
                            }
                        },
                    ],
                },
            },
        },
    }
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    store = Store(tmp_path / "store")
    with pytest.raises(GateFailed, match="expect_column_max_to_be_between") as e:
        build(tmp_path / "p.yaml", store)
    assert e.value.step == "check"
    with pytest.raises(StoreError):
        store.manifest("gx/check")
    assert not [v for v in store.list_versions() if "check" in str(v.get("name"))]
    # warn: the build goes through and the results are in the version's report
    spec["steps"]["check"]["params"]["on_failure"] = "warn"
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    build(tmp_path / "p.yaml", store)
    report = store.manifest("gx/check")["report"]
    assert report["failed_expectations"] == ["expect_column_max_to_be_between(yrs_married)"]
    assert store.read("gx/check").height == frame.height
    html = (store.artifact_dir("gx/check") / "validation.html").read_text()
    assert "FAIL" in html and "expect_column_max_to_be_between(yrs_married)" in html


def test_suggested_values_are_of_the_data(frame: pl.DataFrame) -> None:
    suite = suggest_suite(frame.head(50), max_set_size=3)
    between = {
        e["kwargs"]["column"]: e["kwargs"]
        for e in suite["expectations"]
        if e["type"] == "expect_column_values_to_be_between"
    }
    assert between["age"]["min_value"] == frame.head(50)["age"].min()
    assert between["age"]["max_value"] == frame.head(50)["age"].max()
