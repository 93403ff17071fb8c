"""DP-CTGAN decodes within the public bounds and domain (post-processing): no value above a
public bound, no `(other)` placeholder, no far-out range from a spurious noisy bucket."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("opacus")

from tamis.privacy.dp.ctgan import DPCTGAN  # noqa: E402
from tamis.privacy.dp.stats import OTHER, _dp_bounds  # noqa: E402


def _frame(n: int = 800) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    c = rng.choice(["a", "b", "c", "zz"], n, p=[0.4, 0.2, 0.15, 0.25]).astype(object)
    c[rng.random(n) < 0.05] = None  # nulls are not in the public domain either
    return pl.DataFrame(
        {
            "age": rng.integers(17, 91, n),
            "c": pl.Series(c.tolist(), dtype=pl.String),
            "d": rng.choice(["u", "v", "w", "x"], n, p=[0.5, 0.3, 0.19, 0.01]).tolist(),
        }
    )


def _assert_valid(out: pl.DataFrame, domains: dict[str, set[str]], bounds: dict[str, Any]) -> None:
    for col, dtype in out.schema.items():
        if dtype == pl.String:
            assert OTHER not in set(out[col].drop_nulls().to_list()), col
    for col, domain in domains.items():
        assert set(out[col].drop_nulls().to_list()) <= domain, col
    for col, (lo, hi) in bounds.items():
        assert out[col].min() >= lo and out[col].max() <= hi, col


def test_decodes_within_public_bounds_and_domain(tiny_ctgan_config: Callable[..., Any]) -> None:
    df = _frame()
    meta = {"columns": {"age": {"bounds": [17.5, 89.5]}, "c": {"categories": ["a", "b", "c"]}}}
    model = DPCTGAN(tiny_ctgan_config(batch_size=100, epsilon=3.0, columns=meta["columns"])).fit(df)
    out = model.sample(4000, seed=0)
    assert model.transformer is not None
    (d,) = [k for k in model.transformer.categorical if k.name == "d"]
    released = {v for v in d.categories if v != OTHER}
    # a quarter of `c` is outside its public domain: it is never emitted as "(other)"
    _assert_valid(out, {"c": {"a", "b", "c"}, "d": released}, {"age": (18, 89)})
    assert out["age"].dtype == pl.Int64


def test_dp_bounds_are_not_thrown_far_out_by_a_spurious_bucket() -> None:
    """163 power-of-two buckets: a 3-sigma cut let one empty bucket through in ~20 % of columns
    (ages up to 2^46); the cut now keeps that chance below 0.1 %."""
    x = np.random.default_rng(0).integers(17, 91, 5000).astype(float)
    his = [_dp_bounds(x, 5.0, np.random.default_rng(seed))[1] for seed in range(300)]
    los = [_dp_bounds(x, 5.0, np.random.default_rng(seed))[0] for seed in range(300)]
    assert max(his) <= 128 and min(los) >= 16


def test_adult_synthetic_rows_stay_in_the_public_domain(
    adult_train_clean: pl.DataFrame, tiny_ctgan_config: Callable[..., Any]
) -> None:
    df = adult_train_clean.filter(pl.col("income").is_not_null()).head(3000)
    workclass = ["Private", "Self-emp-not-inc", "Self-emp-inc", "Federal-gov", "Local-gov"]
    workclass += ["State-gov", "Without-pay", "Never-worked"]
    meta = {
        "columns": {
            "age": {"bounds": [17, 90]},
            "workclass": {"categories": workclass},  # adult's `?` (null) is not in it
            "income": {"categories": ["<=50K", ">50K"]},
        }
    }
    cfg = tiny_ctgan_config(batch_size=300, epsilon=3.0, columns=meta["columns"])
    out = DPCTGAN(cfg).fit(df).sample(3000, seed=0)
    _assert_valid(
        out,
        {"workclass": set(workclass), "income": {"<=50K", ">50K"}},
        {"age": (17, 90)},
    )
