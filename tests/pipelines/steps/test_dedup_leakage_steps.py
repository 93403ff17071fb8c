"""The dedup / near_dedup / leakage step types end to end through the runner and the store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import yaml

from tamis.errors import DataError, SpecError
from tamis.pipelines.runner import build, run_step
from tamis.pipelines.store import Store


def test_pipeline_builds_dedup_near_dedup_and_leakage(
    tmp_path: Path, store: Store, shared_datasets: Path
) -> None:
    adult = shared_datasets / "adult"
    sms = shared_datasets / "sms_spam" / "SMSSpamCollection.tsv"
    spec = {
        "name": "dl",
        "sources": {
            "train": {"path": str(adult / "adult.data"), "format": "csv"},
            "test": {"path": str(adult / "adult.test"), "format": "csv"},
            "sms": {"path": str(sms), "format": "tsv", "options": {"quote_char": None}},
        },
        "steps": {
            "dedup": {"use": "dedup", "input": "train", "params": {"columns": "all"}},
            "flag": {
                "use": "dedup",
                "input": "train",
                "params": {"action": "flag", "normalize": True},
            },
            "leak": {
                "use": "leakage",
                "input": "dedup",
                "against": ["test"],
                "params": {"label": "income", "action": "drop"},
            },
            "near": {
                "use": "near_dedup",
                "input": "sms",
                "params": {"column": "SMS", "threshold": 0.8},
            },
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(spec))
    build(path, store)
    assert store.manifest("dl/dedup")["report"]["duplicates"] == 24
    assert store.read("dl/dedup").height == store.read("dl/train").height - 24
    assert (
        store.table("dl/dedup", "clusters")["size"].sum()
        == 24 + store.manifest("dl/dedup")["report"]["clusters"]
    )
    flagged = store.read("dl/flag")
    assert flagged["is_duplicate_issue"].sum() == 24
    leak = store.manifest("dl/leak")["report"]
    assert leak["removed"] == leak["against"]["against_0"]["exact"]["input_rows"] > 0
    assert store.read("dl/leak").height == leak["rows_out"]
    assert store.read("dl/test").height == 16281  # the eval set is never changed
    near = store.manifest("dl/near")["report"]
    assert near["rows_out"] == store.read("dl/near").height < 5574
    assert (
        store.table("dl/near", "pairs").height
        == near["verified_pairs"] + near["identical_shingle_sets"]
    )


def test_run_step_errors_name_the_column_and_params() -> None:
    df = pl.DataFrame({"n": [1, 2, 3]})
    with pytest.raises(DataError, match="step 'near_dedup'.*column 'n'"):
        run_step("near_dedup", {"input": df}, {"column": "n"})
    with pytest.raises(DataError, match="step 'dedup'.*column 'x'"):
        run_step("dedup", {"input": df}, {"columns": ["x"]})
    with pytest.raises(SpecError, match="colum"):
        run_step("dedup", {"input": df}, {"colums": ["n"]})
    out = run_step("leakage", {"input": df, "against": [df.head(1)]}, {"action": "flag"})
    assert out.report["leaked_rows"] == 1
    assert out.frames["data"]["is_leakage_issue"].to_list() == [True, False, False]  # type: ignore[index]
