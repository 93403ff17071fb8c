"""End-to-end DP-CTGAN guarantees on tiny runs: fixed fake batch, ledger within target, refusals,
and sampling that never needs (or holds) a private row."""

from __future__ import annotations

import gc
import json
import math
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from tamis.errors import DataError, PrivacyError  # noqa: E402
from tamis.privacy.dp.ctgan import DPCTGAN  # noqa: E402


def _frame(n: int = 600, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, n)
    cat = rng.choice(["a", "b", "c"], n, p=[0.6, 0.3, 0.1])
    label = np.where((age > 45) ^ (rng.random(n) < 0.1), "hi", "lo")
    return pl.DataFrame(
        {"age": age, "x": rng.normal(size=n), "cat": cat.tolist(), "label": label.tolist()}
    )


@pytest.fixture
def fit(tiny_ctgan_config: Callable[..., Any]) -> Callable[..., DPCTGAN]:
    """`fit(df, **kw)`: a tiny DP-CTGAN (batches of 60 unless `kw` says otherwise) fitted on df."""

    def run(df: pl.DataFrame, **kw: Any) -> DPCTGAN:
        return DPCTGAN(tiny_ctgan_config(**{"batch_size": 60, **kw})).fit(df)

    return run


def test_fake_batch_has_a_fixed_size_while_real_batches_vary(fit: Callable[..., DPCTGAN]) -> None:
    model = fit(_frame(), fake_batch_size=64, epochs=2)
    real = [r for r, _, _ in model.step_sizes]
    fake = {f for _, f, _ in model.step_sizes}
    assert fake == {64}
    assert len(set(real)) > 1  # Poisson sampling: the real batch size varies
    assert all(total == r + 64 for r, _, total in model.step_sizes)
    assert len(model.step_sizes) == model.stats["steps"] == 2 * math.ceil(600 / 60)


@pytest.mark.parametrize(("epsilon", "accountant"), [(1.0, "rdp"), (3.0, "prv"), (10.0, "rdp")])
def test_ledger_total_within_target(
    fit: Callable[..., DPCTGAN], epsilon: float, accountant: str
) -> None:
    model = fit(_frame(300), epsilon=epsilon, batch_size=100, accountant=accountant)
    assert model.ledger is not None
    ledger = model.ledger.to_dict()
    total = ledger["total"]
    assert total["within_target"] and total["epsilon"] <= epsilon
    assert total["delta"] < 1 / 300
    names = [m["name"] for m in ledger["mechanisms"]]
    # every private statistic is on the ledger: bounds + modes per number, domain per category
    assert {"bounds:age", "modes:age", "bounds:x", "modes:x", "domain:cat", "domain:label"} <= set(
        names
    )
    assert names[-1] == "dp_sgd:discriminator"
    # Opacus' own accountant (DP-SGD alone) agrees that the DP-SGD part fits
    assert model.stats["opacus_dp_sgd_epsilon"] <= total["epsilon"] + 0.02
    # the budget is used, not wasted: the composed total is close to the target
    assert total["epsilon"] >= 0.9 * epsilon


def test_public_metadata_is_not_charged(fit: Callable[..., DPCTGAN]) -> None:
    meta = {
        "columns": {
            "age": {"bounds": [18, 80]},
            "x": {"bounds": [-4, 4]},
            "cat": {"categories": ["a", "b", "c"]},
            "label": {"categories": ["hi", "lo"]},
        }
    }
    model = fit(_frame(), columns=meta["columns"], conditional="uniform")
    assert model.ledger is not None
    names = [m.name for m in model.ledger.mechanisms]
    assert names == ["modes:age", "modes:x", "dp_sgd:discriminator"]
    assert model.ledger.delta_extra() == 0.0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"delta": 1 / 600}, "delta"),
        ({"delta": 0.5}, "delta"),
        ({"pac": 10}, "pac"),
        ({"gradient_penalty": 10.0}, "gradient_penalty"),
        ({"discriminator_norm": "batch"}, "discriminator_norm"),
        ({"noise_multiplier": 0.05, "epsilon": 1.0}, "epsilon"),
        ({"preprocess_fraction": 0.0}, "preprocess_fraction"),
    ],
)
def test_configurations_that_break_the_guarantee_are_refused(
    fit: Callable[..., DPCTGAN], kw: dict[str, Any], field: str
) -> None:
    with pytest.raises(PrivacyError) as err:
        fit(_frame(), **kw)
    assert err.value.field == field
    assert err.value.message


def test_tiny_datasets_are_refused(fit: Callable[..., DPCTGAN]) -> None:
    with pytest.raises(DataError, match="at least 50 rows"):
        fit(_frame(40))


def test_sampling_never_reads_a_private_row(fit: Callable[..., DPCTGAN], tmp_path: Path) -> None:
    df = _frame()
    # a canary held by one row: a DP domain must not release it
    df = df.with_columns(
        pl.when(pl.int_range(pl.len()) == 7)
        .then(pl.lit("SECRET-7"))
        .otherwise(pl.col("cat"))
        .alias("cat")
    )
    ref = weakref.ref(df)
    model = fit(df)
    model.save(tmp_path / "m")
    del df
    gc.collect()
    assert ref() is None, "the fitted model keeps a reference to the private frame"
    # nothing sized like the data is held by the model
    for value in vars(model).values():
        assert not isinstance(value, pl.DataFrame | np.ndarray | torch.Tensor)
    saved = (tmp_path / "m" / "dp_ctgan.json").read_text()
    assert "SECRET-7" not in saved
    restored = DPCTGAN.load(tmp_path / "m")
    out = restored.sample(300, seed=1)
    assert out.height == 300 and out.columns == ["age", "x", "cat", "label"]
    assert "SECRET-7" not in out["cat"].to_list()
    assert out.equals(model.sample(300, seed=1))
    assert json.loads(saved)["ledger"]["total"]["within_target"]


def test_ledger_on_adult_subset(
    fit: Callable[..., DPCTGAN], adult_train_clean: pl.DataFrame
) -> None:
    """Real data with nulls and 15 mixed columns; budget respected, output in the same schema."""
    df = adult_train_clean.head(3000)
    model = fit(df, epsilon=3.0, batch_size=300)
    assert model.ledger is not None and model.ledger.total()["epsilon"] <= 3.0
    out = model.sample(500)
    assert out.schema == df.schema
    assert set(out["income"].drop_nulls().unique()) <= {">50K", "<=50K"}  # never "(other)"
