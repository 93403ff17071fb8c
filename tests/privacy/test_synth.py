"""SDV synthesizers (`ctgan`, `tvae`, `gaussian_copula`): metadata overrides, seeds, bad input,
the model file kept beside the version and the refusal to unpickle files from outside the store."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tamis.errors import DataError, TamisError
from tamis.pipelines.runner import build, run_step
from tamis.pipelines.spec import parse_pipeline
from tamis.pipelines.store import Store
from tamis.privacy.synth import (
    NeuralSynthConfig,
    SynthConfig,
    detect_metadata,
    fit_synthesizer,
    load_model,
    prepare_frame,
)


def test_gaussian_copula_step_is_seeded(mixed: pl.DataFrame) -> None:
    a = run_step("gaussian_copula", {"input": mixed}, {"rows": 200, "quality": True}, seed=3)
    b = run_step("gaussian_copula", {"input": mixed}, {"rows": 200, "quality": False}, seed=3)
    c = run_step("gaussian_copula", {"input": mixed}, {"rows": 200, "quality": False}, seed=4)
    assert a.frames["data"].equals(b.frames["data"])
    assert not a.frames["data"].equals(c.frames["data"])
    assert a.frames["data"].columns == mixed.columns and a.frames["data"].height == 200
    assert 0.5 < a.report["quality"]["score"] <= 1.0
    assert a.report["sdtypes"]["cat"] == "categorical"


@pytest.mark.parametrize("kind", ["ctgan", "tvae"])
def test_neural_steps_run(kind: str, mixed: pl.DataFrame) -> None:
    out = run_step(
        kind,
        {"input": mixed},
        {"epochs": 1, "batch_size": 100, "rows": 150, "quality": False},
        seed=0,
    )
    df = out.frames["data"]
    assert df.height == 150 and df.columns == mixed.columns
    assert set(df["grp"].drop_nulls().unique()) <= {"x", "y"}
    assert out.report["epochs"] == 1


def test_metadata_overrides_pii_and_primary_key(mixed: pl.DataFrame) -> None:
    df = mixed.with_row_index("id").with_columns(
        pl.format("user{}@example.com", pl.col("id")).alias("email"),
        pl.col("id").cast(pl.Int64),
    )
    pdf, _ = prepare_frame(df)
    cfg = SynthConfig(
        sdtypes={"age": "categorical", "email": "email"},
        pii=["email"],
        primary_key="id",
    )
    meta = detect_metadata(pdf, cfg).to_dict()["tables"]["t"]
    assert meta["primary_key"] == "id"
    assert meta["columns"]["age"]["sdtype"] == "categorical"
    assert meta["columns"]["email"] == {"sdtype": "email", "pii": True}
    out = run_step(
        "gaussian_copula",
        {"input": df},
        {"pii": ["email"], "primary_key": "id", "rows": 100, "quality": False},
    )
    syn = out.frames["data"]
    assert syn["id"].n_unique() == 100
    # PII is generated, never copied from the training rows
    assert not set(syn["email"].to_list()) & set(df["email"].to_list())
    assert out.report["pii_columns"] == ["email"]


def test_bad_input(mixed: pl.DataFrame) -> None:
    with pytest.raises(DataError, match="at least 50"):
        prepare_frame(mixed.head(49))
    with pytest.raises(DataError, match="entirely null") as e:
        prepare_frame(mixed.with_columns(pl.lit(None, dtype=pl.Float64).alias("empty")))
    assert e.value.column == "empty"
    with pytest.raises(DataError, match="unsupported column type") as e:
        prepare_frame(mixed.with_columns(pl.concat_list("age", "age").alias("lst")))
    assert e.value.column == "lst" and e.value.fix
    with pytest.raises(DataError, match="not in the data"):
        detect_metadata(prepare_frame(mixed)[0], SynthConfig(sdtypes={"nope": "categorical"}))
    with pytest.raises(DataError, match="unknown sdtype"):
        detect_metadata(prepare_frame(mixed)[0], SynthConfig(sdtypes={"age": "numeric"}))
    with pytest.raises(DataError, match="multiple of 10"):
        fit_synthesizer(mixed, "ctgan", NeuralSynthConfig(batch_size=55))


def test_constant_columns_are_kept_not_modelled(mixed: pl.DataFrame) -> None:
    df = mixed.with_columns(pl.lit("EU").alias("region"), pl.lit(7).alias("version"))
    out = run_step("gaussian_copula", {"input": df}, {"rows": 80, "quality": False})
    syn = out.frames["data"]
    assert syn.columns == df.columns
    assert syn["region"].unique().to_list() == ["EU"] and syn["version"].unique().to_list() == [7]
    assert out.report["constant_columns"] == {"region": "EU", "version": "7"}


def test_model_saved_in_store_and_loaded_only_from_there(
    tmp_path: Path, mixed: pl.DataFrame
) -> None:
    mixed.write_parquet(tmp_path / "d.parquet")
    spec = parse_pipeline(
        {
            "name": "syn",
            "sources": {"d": {"path": "d.parquet"}},
            "steps": {
                "gc": {
                    "use": "gaussian_copula",
                    "input": "d",
                    "params": {"rows": 120, "quality": False},
                }
            },
        },
        base_dir=str(tmp_path),
    )
    store = Store(tmp_path / "st")
    build(spec, store)
    manifest = store.manifest("syn/gc")
    assert manifest["rows"] == 120 and "synthesizer.pkl" in manifest["artifacts"]
    path = store.artifact_dir("syn/gc") / "synthesizer.pkl"
    model = load_model(path, store.root)
    assert model.sample(5)["t"].shape[0] == 5
    outside = tmp_path / "copy.pkl"
    outside.write_bytes(path.read_bytes())
    with pytest.raises(TamisError, match="refusing to unpickle"):
        load_model(outside, store.root)
    with pytest.raises(TamisError, match="refusing to unpickle"):
        load_model(store.root / "versions" / ".." / ".." / "copy.pkl", store.root)
    # a pickle swapped in after the store wrote the version is refused (its recorded hash)
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(TamisError, match="not the ones the store wrote"):
        load_model(path, store.root)


def test_ctgan_leaves_no_idle_worker_processes_behind(tmp_path: Path) -> None:
    """CTGAN's transformer calls joblib.Parallel(n_jobs=-1) on 500+ rows; with joblib's process
    backend the idle workers kept a finished `tamis build` (or sweep worker) alive for up to
    300 s at exit. Fit and sample in a fresh process: no joblib worker pool may exist after, and
    the process must end as soon as its work is done."""
    import subprocess
    import sys
    import time

    script = (
        "import numpy as np, polars as pl\n"
        "from tamis.privacy.synth import NeuralSynthConfig, fit_synthesizer, sample_synthetic\n"
        "rng = np.random.default_rng(0)\n"
        "df = pl.DataFrame({'a': rng.normal(size=800), 'b': rng.choice(['x', 'y'], 800)})\n"
        "model, info = fit_synthesizer(df, 'ctgan', NeuralSynthConfig(epochs=1, batch_size=100))\n"
        "sample_synthetic(model, 700, 0, info)\n"
        "from joblib.externals.loky import reusable_executor\n"
        "print('pool', reusable_executor._executor)\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=240, cwd=tmp_path
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pool None" in out.stdout
    assert time.perf_counter() - t0 < 120
