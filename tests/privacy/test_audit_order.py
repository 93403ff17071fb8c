"""Row order never changes an audit figure (issue 12: linkage.excess_risk moved 0.017 -> 0.032)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import pytest
from threadpoolctl import threadpool_limits

from tamis.privacy.audit import AuditConfig, run_audit
from tamis.privacy.audit.disclosure import linkage_risk
from tamis.privacy.audit.order import canonical, subsample


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """OpenMP models on a loaded shared machine run 15x slower with all threads than with one."""
    import sklearn.ensemble  # noqa: F401  (load its OpenMP runtime, so that the limit applies)

    with threadpool_limits(1):
        yield


def _walk(obj: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of the report, keyed by its path (lists by index)."""
    out: dict[str, Any] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.update(_walk(v, f"{path}.{k}"))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.update(_walk(v, f"{path}[{i}]"))
    else:
        out[path] = obj
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b) and type(a) is type(b)


def _inputs(adult_tr: pl.DataFrame, n: int) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    real = adult_tr[:n]
    hold = adult_tr[n : 2 * n]
    # half copies of training rows (exact ties at distance 0, duplicates) and half unseen rows
    syn = pl.concat([real[: n // 2], real[: n // 4], adult_tr[2 * n : 2 * n + n // 4]])
    return real, syn, hold


def _shuffled_reports(
    real: pl.DataFrame, syn: pl.DataFrame, hold: pl.DataFrame, cfg: AuditConfig, times: int
) -> list[dict[str, Any]]:
    from tamis.privacy.audit.release import make_synthesize

    reports = []
    for i in range(times):
        res = run_audit(
            real.sample(fraction=1.0, shuffle=True, seed=i),
            syn.sample(fraction=1.0, shuffle=True, seed=100 + i),
            hold.sample(fraction=1.0, shuffle=True, seed=200 + i),
            cfg,
            seed=7,
            synthesize=make_synthesize("copy", 1),
        )
        reports.append(res.report)
    return reports


def _assert_identical(reports: list[dict[str, Any]], real: pl.DataFrame) -> int:
    """Every leaf equal across the shuffles, except the row ids of the per-record risk list,
    which are positions in each shuffled real input: those must name the same records."""
    first = _walk(reports[0])
    for other in reports[1:]:
        walked = _walk(other)
        assert walked.keys() == first.keys()
        diff = [k for k in first if not k.endswith(".real_row") and not _same(first[k], walked[k])]
        assert not diff, f"figures that moved with row order: {diff[:10]}"
    first_real = real.sample(fraction=1.0, shuffle=True, seed=0)  # as in _shuffled_reports
    for i, rep in enumerate(reports):
        shuffled = real.sample(fraction=1.0, shuffle=True, seed=i)
        for a, b in zip(reports[0]["record_risk"]["top"], rep["record_risk"]["top"], strict=True):
            assert shuffled.row(b["real_row"]) == first_real.row(a["real_row"])
        assert "record" not in rep["record_risk"]["top"][0]  # values are opt-in
    return len(first)


def test_five_shuffles_give_identical_figures(adult_tr: pl.DataFrame) -> None:
    real, syn, hold = _inputs(adult_tr, 1000)
    cfg = AuditConfig(
        quasi_identifiers=["age", "sex", "race"],
        sensitive=["income"],
        quality=False,
        disclosure=False,
        n_eval=300,
        n_boot=20,
        max_rows=800,  # forces the seeded subsamples of the distance metrics
    )
    reports = _shuffled_reports(real, syn, hold, cfg, 5)
    leaves = _assert_identical(reports, real)
    m = reports[0]["metrics"]
    # every section that can move with order was computed
    for name in (
        "linkage.excess_risk",
        "dcr.closer_to_train_share_ci_low",
        "mia.distance.auc",
        "mia.domias.auc",
        "mia.worst.auc_ci_high",
        "mia.worst.tpr_at_fpr_0.001_ci_high",
        "record_risk.outlier_share_top_k",
        "k_anonymity.k",
        "validity.max_out_of_range_share",
    ):
        assert name in m, name
    assert leaves > 500


@pytest.mark.slow
def test_five_shuffles_with_models_and_sdmetrics(adult_tr: pl.DataFrame) -> None:
    """The sections that fit models (shadow attack, TSTR) or run SDMetrics, all at once."""
    real, syn, hold = _inputs(adult_tr, 600)
    cfg = AuditConfig(
        quasi_identifiers=["age", "sex", "race"],
        sensitive=["income"],
        target="income",
        n_eval=200,
        n_boot=10,
        shadow={"count": 1, "synthesizer": "copy"},
    )
    reports = _shuffled_reports(real, syn, hold, cfg, 5)
    _assert_identical(reports, real)
    for name in ("quality.score", "disclosure.categorical_cap", "mia.shadow.auc", "tstr.auc"):
        assert name in reports[0]["metrics"], name


def test_linkage_ties_are_ambiguous_whatever_the_order() -> None:
    # two synthetic copies of the real record's quasi-identifiers, with different secrets:
    # the nearest record is a tie at distance 0, so the link is ambiguous in either order
    real = pl.DataFrame({"age": [30, 50], "sex": ["f", "m"], "income": ["hi", "lo"]})
    syn_a = pl.DataFrame(
        {"age": [30, 30, 70], "sex": ["f", "f", "m"], "income": ["hi", "lo", "lo"]}
    )
    syn_b = syn_a.reverse()
    out = [linkage_risk(real, real, s, ["age", "sex"], ["income"])["risk"] for s in (syn_a, syn_b)]
    assert out == [0.0, 0.0]


def test_subsample_and_canonical_ignore_row_order(adult_tr: pl.DataFrame) -> None:
    frame = adult_tr[:2000].with_columns(pl.col("workclass").cast(pl.Categorical))
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    assert canonical(frame).equals(canonical(shuffled))
    a, b = subsample(frame, 300, 5), subsample(shuffled, 300, 5)
    assert canonical(a).equals(canonical(b)) and a.height == 300
    assert not canonical(subsample(frame, 300, 6)).equals(canonical(a))


def test_per_row_dcr_follows_the_synthetic_rows_as_given(adult_tr: pl.DataFrame) -> None:
    real, hold = adult_tr[:500], adult_tr[500:1000]
    syn = pl.concat([real[:200], adult_tr[1000:1300]]).sample(fraction=1.0, shuffle=True, seed=1)
    cfg = AuditConfig(quality=False, disclosure=False, pii_scan=False, n_eval=100, n_boot=0)
    arrays = run_audit(real, syn, hold, cfg).arrays
    is_copy = syn.with_row_index("i").join(
        real.unique().with_columns(pl.lit(True).alias("copy")),
        on=syn.columns,
        how="left",
        nulls_equal=True,
    )
    flag = is_copy.sort("i")["copy"].fill_null(False).to_numpy()
    assert len(flag) == syn.height and flag.sum() >= 200
    dcr = np.empty(syn.height)
    dcr[arrays["synthetic_row"]] = arrays["dcr_train"]
    assert (dcr[flag] == 0).all() and (dcr[~flag] > 0).mean() > 0.9
