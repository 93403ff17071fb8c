"""Shared fixtures: a temporary store, real datasets (shipped or in ../shared), tiny inputs."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
import yaml

from tamis.pipelines.store import Store

# Tests must never reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_TRACKING_URI", "")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TAMIS_SHARED_DATASETS", REPO.parent / "shared" / "datasets"))


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.exists():
        pytest.skip(f"shared datasets not found at {SHARED}")
    return SHARED


def _read_adult(path: Path) -> pl.DataFrame:
    """UCI Adult as shipped in ../shared: header line, leading spaces, ' ?' for missing, a blank
    last line. Read by pandas (the independent reference): the blank line is skipped, as by
    DuckDB and tamis (Polars' plain `read_csv` made it an extra all-null row)."""
    import pandas as pd

    return pl.from_pandas(pd.read_csv(path))


@pytest.fixture(scope="session")
def adult_train(shared_datasets: Path) -> pl.DataFrame:
    """adult.data raw (32,561 rows; column names and values keep their leading spaces)."""
    return _read_adult(shared_datasets / "adult" / "adult.data")


@pytest.fixture(scope="session")
def adult_test(shared_datasets: Path) -> pl.DataFrame:
    """adult.test raw (16,281 rows)."""
    return _read_adult(shared_datasets / "adult" / "adult.test")


def clean_adult(df: pl.DataFrame) -> pl.DataFrame:
    """Stripped names and values, '?' as null, numbers as numbers (what `normalize` produces)."""
    df = df.rename({c: c.strip() for c in df.columns})
    df = df.with_columns(
        [pl.col(c).str.strip_chars() for c, t in df.schema.items() if t == pl.String]
    ).with_columns(
        [
            pl.when(pl.col(c) == "?").then(None).otherwise(pl.col(c)).alias(c)
            for c, t in df.schema.items()
            if t == pl.String
        ]
    )
    numeric = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    return df.with_columns([pl.col(c).cast(pl.Int64) for c in numeric])


@pytest.fixture(scope="session")
def adult_train_clean(adult_train: pl.DataFrame) -> pl.DataFrame:
    return clean_adult(adult_train)


@pytest.fixture(scope="session")
def adult_test_clean(adult_test: pl.DataFrame) -> pl.DataFrame:
    return clean_adult(adult_test)


@pytest.fixture(scope="session")
def sms(shared_datasets: Path) -> pl.DataFrame:
    """SMS Spam Collection: columns Label (ham/spam) and SMS; read with quoting disabled."""
    return pl.read_csv(
        shared_datasets / "sms_spam" / "SMSSpamCollection.tsv", separator="\t", quote_char=None
    )


@pytest.fixture(scope="session")
def fair() -> pl.DataFrame:
    """statsmodels' `fair` survey (6,366 rows), shipped with statsmodels."""
    from statsmodels.datasets import fair as fair_data

    return pl.from_pandas(fair_data.load_pandas().data)


@pytest.fixture
def pipeline_dir(tmp_path: Path, fair: pl.DataFrame) -> Path:
    """A directory with a real CSV (statsmodels fair) and a 5-step pipeline over it."""
    fair.write_csv(tmp_path / "fair.csv")
    spec = {
        "name": "p",
        "seed": 7,
        "sources": {"fair": {"path": "fair.csv"}},
        "steps": {
            "clean": {
                "use": "normalize",
                "input": "fair",
                "params": {"cast": {"religious": "int"}},
            },
            "adults": {"use": "filter", "input": "clean", "params": {"where": "age >= 22"}},
            "parts": {
                "use": "split",
                "input": "adults",
                "params": {"fractions": {"train": 0.75, "test": 0.25}},
            },
            "small": {"use": "sample", "input": "parts.train", "params": {"n": 500}},
            "boot": {
                "use": "sample",
                "input": "small",
                "params": {"fraction": 1.0, "with_replacement": True},
            },
        },
    }
    (tmp_path / "pipeline.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return tmp_path
