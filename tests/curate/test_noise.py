"""inject_label_noise: exact rates, class-conditional matrices, truth only in the report."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from tamis.curate.noise import LabelNoiseConfig, detection_metrics, inject_label_noise
from tamis.errors import DataError
from tamis.pipelines.runner import run_step


def _frame(n: int = 3000) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame({"id": np.arange(n), "y": rng.choice(["a", "b", "c", "d"], n)})


def test_uniform_exact_rate_seeded_and_truth_kept() -> None:
    df = _frame()
    out, rep = inject_label_noise(df, LabelNoiseConfig(label="y", rate=0.2, id_column="id"), seed=3)
    changed = out["y"] != df["y"]
    assert int(changed.sum()) == 600 == rep["flipped"]
    assert rep["rate_actual"] == pytest.approx(0.2)
    assert out.columns == df.columns  # no truth column leaks into the data
    table = rep["tables"]["noise"]
    assert table["row"].to_list() == np.flatnonzero(changed.to_numpy()).tolist()
    assert (table["true_label"] == df["y"].gather(table["row"])).all()
    assert (table["noisy_label"] == out["y"].gather(table["row"])).all()
    assert (table["id"] == table["row"]).all()
    again, _ = inject_label_noise(df, LabelNoiseConfig(label="y", rate=0.2), seed=3)
    assert again.equals(out)
    other, _ = inject_label_noise(df, LabelNoiseConfig(label="y", rate=0.2), seed=4)
    assert not other.equals(out)
    # flips go to each other class about equally often
    pairs = table.group_by("true_label", "noisy_label").len()
    assert pairs.height == 12 and pairs["len"].min() > 25


def test_class_conditional_given_and_generated() -> None:
    df = _frame(20000)
    out, rep = inject_label_noise(
        df,
        LabelNoiseConfig(
            label="y", kind="class_conditional", transition={"a": {"b": 0.3}, "c": {"d": 0.1}}
        ),
    )
    per = {r["class"]: r["rate"] for r in rep["per_class"]}
    assert per["a"] == pytest.approx(0.3, abs=0.02) and per["c"] == pytest.approx(0.1, abs=0.015)
    assert per["b"] == 0 and per["d"] == 0
    t = rep["tables"]["noise"]
    assert set(zip(t["true_label"], t["noisy_label"], strict=True)) == {("a", "b"), ("c", "d")}
    out, rep = inject_label_noise(
        df, LabelNoiseConfig(label="y", kind="class_conditional", rate=0.25), seed=1
    )
    m = np.array(rep["transition"])
    assert np.allclose(m.sum(axis=1), 1) and np.allclose(np.diag(m), 0.75)
    assert rep["rate_actual"] == pytest.approx(0.25, abs=0.015)
    with pytest.raises(DataError, match="shape"):
        inject_label_noise(
            df, LabelNoiseConfig(label="y", kind="class_conditional", transition=[[1.0]])
        )
    with pytest.raises(DataError, match="not a label value"):
        inject_label_noise(
            df, LabelNoiseConfig(label="y", kind="class_conditional", transition={"z": {"a": 0.1}})
        )


def test_nulls_untouched_numeric_dtype_and_errors() -> None:
    df = pl.DataFrame({"y": [1, 2, None, 3] * 50})
    out, rep = inject_label_noise(df, LabelNoiseConfig(label="y", rate=0.5))
    assert out["y"].dtype == pl.Int64 and out["y"].null_count() == 50
    assert rep["rows_labelled"] == 150 and rep["flipped"] == 75
    with pytest.raises(DataError, match="label column 'nope'"):
        inject_label_noise(df, LabelNoiseConfig(label="nope"))
    with pytest.raises(ValidationError, match="rate"):
        LabelNoiseConfig(label="y", rate=1.5)
    with pytest.raises(DataError, match="at least 2 classes"):
        inject_label_noise(pl.DataFrame({"y": [1, 1]}), LabelNoiseConfig(label="y"))


def test_step_and_detection_metrics() -> None:
    df = _frame(500)
    out = run_step("inject_label_noise", {"input": df}, {"label": "y", "rate": 0.1}, seed=5)
    table = out.tables["noise"]
    assert table.height == 50 and "tables" not in out.report
    perfect = np.zeros(500, dtype=bool)
    perfect[table["row"].to_numpy()] = True
    assert detection_metrics(perfect, table, n_rows=500)["f1"] == 1.0
    half = perfect.copy()
    half[table["row"].to_numpy()[:25]] = False
    m = detection_metrics(half, table, n_rows=500)
    assert m["precision"] == 1.0 and m["recall"] == 0.5


def test_truth_column_marks_the_flipped_rows() -> None:
    df = pl.DataFrame({"x": range(200), "y": [0, 1, 2, None] * 50})
    out, rep = inject_label_noise(
        df, LabelNoiseConfig(label="y", rate=0.3, truth_column="is_injected_noise"), seed=4
    )
    changed = (out["y"] != df["y"]).fill_null(False)
    assert out["is_injected_noise"].to_list() == changed.to_list()
    assert int(out["is_injected_noise"].sum()) == rep["flipped"] == rep["tables"]["noise"].height
    with pytest.raises(DataError, match="already exists"):
        inject_label_noise(df, LabelNoiseConfig(label="y", truth_column="x"))
