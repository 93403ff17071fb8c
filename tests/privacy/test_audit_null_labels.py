"""Null labels in the audit's classifier part (TSTR/TRTR): dropped, counted, never a class."""

from __future__ import annotations

import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.quality import tstr


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """OpenMP models on a loaded shared machine run 15x slower with all threads than with one."""
    import sklearn.ensemble  # noqa: F401  (load its OpenMP runtime, so that the limit applies)

    with threadpool_limits(1):
        yield


def _with_missing_labels(frame: pl.DataFrame, nulls: int, blanks: int) -> pl.DataFrame:
    extra = frame.head(nulls).with_columns(pl.lit(None, dtype=pl.Utf8).alias("income"))
    blank = frame[nulls : nulls + blanks].with_columns(pl.lit(" ").alias("income"))
    return pl.concat([frame, extra, blank])


def test_tstr_drops_and_counts_null_labels(adult_tr: pl.DataFrame) -> None:
    real, syn, hold = adult_tr[:1500], adult_tr[1500:3000], adult_tr[3000:4500]
    clean = tstr(syn, real, hold, "income", n_boot=0)
    messy = tstr(
        _with_missing_labels(syn, 4, 1),
        _with_missing_labels(real, 2, 0),
        _with_missing_labels(hold, 3, 2),
        "income",
        n_boot=0,
    )
    # before: the 3 null holdout labels were the "minority class" ('None'), F1 0 for it
    assert messy["tstr"]["minority_class"] == ">50K" == clean["tstr"]["minority_class"]
    assert messy["null_labels_dropped"] == {"synthetic": 5, "real": 2, "holdout": 5}
    for part in ("tstr", "trtr"):
        for k in ("accuracy", "minority_f1", "auc"):
            assert messy[part][k] == pytest.approx(clean[part][k]), (part, k)
        assert messy[part]["n"] == clean[part]["n"] == 1500
        assert messy[part]["train_classes"] == ["<=50K", ">50K"]


def test_audit_reports_dropped_null_labels(adult_tr: pl.DataFrame) -> None:
    real, hold = adult_tr[:800], _with_missing_labels(adult_tr[800:1600], 3, 0)
    cfg = AuditConfig(quality=False, disclosure=False, n_eval=100, n_boot=0, target="income")
    ml = run_audit(real, adult_tr[1600:2400], hold, cfg).report["ml_efficacy"]
    assert ml["null_labels_dropped"] == {"synthetic": 0, "real": 0, "holdout": 3}
    assert ml["tstr"]["minority_class"] == ">50K"
