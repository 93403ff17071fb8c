"""Fixtures for the privacy tests: cleaned UCI Adult subsets and a small generated table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest


@pytest.fixture(scope="session")
def adult_tr(adult_train_clean: pl.DataFrame) -> pl.DataFrame:
    """Cleaned adult.data without the unlabeled trailing row."""
    return adult_train_clean.filter(pl.col("income").is_not_null())


@pytest.fixture(scope="session")
def adult_te(adult_test_clean: pl.DataFrame) -> pl.DataFrame:
    return adult_test_clean.filter(pl.col("income").is_not_null())


def make_mixed(n: int, seed: int = 0) -> pl.DataFrame:
    """A mixed-type table with a learnable binary label (numbers, categories, a few nulls)."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(40, 12, n).round()
    x2 = rng.exponential(1000, n).round(2)
    cat = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.2, 0.1])
    grp = rng.choice(["x", "y"], n)
    logit = 0.08 * (x1 - 40) + (cat == "a") * 1.2 - (grp == "y") * 0.8
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "pos", "neg")
    df = pl.DataFrame({"age": x1.astype(int), "amount": x2, "cat": cat, "grp": grp, "label": y})
    return df.with_columns(
        pl.when(pl.Series(rng.random(n) < 0.03)).then(None).otherwise(pl.col("cat")).alias("cat")
    )


@pytest.fixture
def mixed() -> pl.DataFrame:
    return make_mixed(600)


@pytest.fixture(name="make_mixed")
def make_mixed_fixture() -> object:
    """`make_mixed(n, seed)` as a fixture (test modules here are not a package)."""
    return make_mixed


_DP_CTGAN_PIPELINE = """
name: dp
seed: {seed}
sources:
  private: {{path: private.parquet}}
steps:
  synth:
    use: dp_ctgan
    input: private
    params:
      epsilon: 3.0
      epochs: 1
      batch_size: 100
      generator_dim: [16]
      discriminator_dim: [16]
      n_modes: 3
      threads: 1
      accountant: rdp
      conditional: noisy
      columns:
        n: {{bounds: [0, 50]}}
        c: {{categories: [x, y, z]}}
"""


@pytest.fixture(scope="session")
def dp_ctgan_pipeline() -> Callable[[int], str]:
    """`dp_ctgan_pipeline(seed)`: the YAML of a pipeline `dp` whose step `synth` is a tiny
    dp_ctgan (epsilon 3, one epoch) on `private.parquet` (columns n in [0, 50], c in x/y/z)."""

    def make(seed: int) -> str:
        return _DP_CTGAN_PIPELINE.format(seed=seed)

    return make


_TINY_CTGAN: dict[str, Any] = dict(
    epochs=1,
    embedding_dim=8,
    generator_dim=[16],
    discriminator_dim=[16],
    n_modes=3,
    threads=1,
    accountant="rdp",
)


@pytest.fixture(scope="session")
def tiny_ctgan_config() -> Callable[..., Any]:
    """`tiny_ctgan_config(**kw)`: the DPCTGANConfig of a one-epoch DP-CTGAN with 16-unit
    networks, one thread, RDP accounting; `kw` sets the rest (batch_size, epsilon...)."""
    from tamis.privacy.dp.config import DPCTGANConfig

    def make(**kw: Any) -> Any:
        return DPCTGANConfig(**{**_TINY_CTGAN, **kw})

    return make
