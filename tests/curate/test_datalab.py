"""datalab: planted duplicates and outliers are found; Datalab-style columns and summary."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from tamis.curate.datalab import DatalabConfig, datalab_issues
from tamis.errors import DataError
from tamis.pipelines.runner import run_step


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def planted() -> pl.DataFrame:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    df = pl.DataFrame(x, schema=["sl", "sw", "pl", "pw"]).with_columns(
        pl.Series("species", np.array(["setosa", "versicolor", "virginica"])[y])
    )
    dupes = df.gather([3, 60, 120])  # exact copies of three rows
    outlier = pl.DataFrame(
        {"sl": [30.0], "sw": [-20.0], "pl": [40.0], "pw": [25.0], "species": ["setosa"]}
    )
    return pl.concat([df, dupes, outlier])


def test_planted_duplicates_and_outlier(planted: pl.DataFrame) -> None:
    out, rep = datalab_issues(planted, DatalabConfig(label="species"))
    assert out.height == planted.height
    for name in ("outlier", "near_duplicate", "non_iid", "class_imbalance"):
        assert out[f"is_{name}_issue"].dtype == pl.Boolean
        scores = out[f"{name}_score"]
        assert scores.min() >= 0 and scores.max() <= 1
    dup_rows = set(np.flatnonzero(out["is_near_duplicate_issue"].to_numpy()).tolist())
    assert {3, 60, 120, 150, 151, 152} <= dup_rows
    assert out["is_outlier_issue"][153] and out["outlier_score"].arg_min() == 153
    summary = {r["issue_type"]: r for r in rep["summary"]}
    assert set(summary) == {"outlier", "near_duplicate", "non_iid", "class_imbalance"}
    assert summary["near_duplicate"]["num_issues"] == int(out["is_near_duplicate_issue"].sum())
    # iris is sorted by class: the row order is not IID
    assert rep["facts"]["non_iid_p_value"] < 0.05
    table = rep["tables"]["datalab_issues"]
    assert table.height == rep["rows_with_any_issue"]
    dropped, rep2 = datalab_issues(
        planted, DatalabConfig(label="species", issue_types=["outlier"], action="drop")
    )
    assert dropped.height == planted.height - rep2["summary"][0]["num_issues"]


def test_text_step_without_label(sms: pl.DataFrame) -> None:
    out = run_step(
        "datalab",
        {"input": sms.head(1500)},
        {"text": "SMS", "issue_types": ["near_duplicate", "outlier"], "svd_dims": 50},
    )
    data = out.frames["data"]
    assert data["is_near_duplicate_issue"].sum() > 0
    assert out.report["features_dim"] == 50


def test_datalab_bad_input(planted: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="need a label"):
        datalab_issues(planted.drop("species"), DatalabConfig(issue_types=["class_imbalance"]))
    with pytest.raises(DataError, match="unknown Datalab issue type"):
        datalab_issues(planted, DatalabConfig(label="species", issue_types=["typo"]))
    with pytest.raises(DataError, match="label column"):
        datalab_issues(planted, DatalabConfig(label="nope"))
