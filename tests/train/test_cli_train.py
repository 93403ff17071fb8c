"""`tamis train` end to end from the CLI: a store ref and a file, --json, show, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

pytest.importorskip("trl")

from tamis.cli import app  # noqa: E402

runner = CliRunner()

PIPELINE = """
name: tone
seed: 0
steps:
  pairs:
    use: tone_pairs
    params: {n: 90}
"""


def run(*args: str, code: int = 0) -> Any:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_rm_then_ppo_from_store_refs(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    st = str(tmp_path / "st")
    run("build", str(tmp_path / "p.yaml"), "--store", st, "--json")
    (tmp_path / "rm.yaml").write_text("num_train_epochs: 1\neval_fraction: 0.25\n")
    rm = run(
        "train", "rm", "--data", "tone/pairs", "--model", "tiny", "--out", str(tmp_path / "rm"),
        "--config", str(tmp_path / "rm.yaml"), "--store", st, "--json",
    )  # fmt: skip
    assert rm["method"] == "rm" and rm["n_eval"] == 22 and "accuracy" in rm
    data = json.loads((tmp_path / "rm" / "data.json").read_text())
    assert data["data"]["ref"] == "tone/pairs" and len(data["data"]["version"]) >= 12
    (tmp_path / "ppo.yaml").write_text("total_episodes: 16\nrollout_batch_size: 8\n"
                                       "mini_batch_size: 4\nresponse_length: 6\n")  # fmt: skip
    ppo = run(
        "train", "ppo", "--data", "tone/pairs.prompts", "--model", "tiny", "--reward-model",
        str(tmp_path / "rm"), "--out", str(tmp_path / "ppo"), "--config",
        str(tmp_path / "ppo.yaml"), "--seed", "3", "--store", st, "--json",
    )  # fmt: skip
    assert ppo["method"] == "ppo" and len(ppo["history"]) == 2
    cfg = json.loads((tmp_path / "ppo" / "config.json").read_text())
    assert cfg["seed"] == 3 and cfg["config"]["response_length"] == 6
    shown = run("train", "show", str(tmp_path / "ppo"), "--json")
    assert shown["metrics"]["win_rate"] == ppo["win_rate"]
    from tamis.pipelines.store import Store

    runs = Store(Path(st)).catalog.query("SELECT kind, name FROM runs WHERE kind = 'train'")
    assert sorted(r["name"] for r in runs) == ["ppo", "rm"]


def test_bad_input_from_the_cli(tmp_path: Path) -> None:
    import polars as pl

    pl.DataFrame({"question": ["a"] * 10}).write_parquet(tmp_path / "q.parquet")
    err = run(
        "train", "dpo", "--data", str(tmp_path / "q.parquet"), "--model", "tiny",
        "--out", str(tmp_path / "o"), "--json", code=1,
    )  # fmt: skip
    assert "preference_pairs" in err["fix"] and "prompt" in err["error"]
    err = run(
        "train", "sft", "--data", str(tmp_path / "missing.parquet"), "--model", "tiny",
        "--out", str(tmp_path / "o"), "--json", code=1,
    )  # fmt: skip
    assert err["file"].endswith("missing.parquet")


def test_data_from_an_hf_export_folder(tmp_path: Path) -> None:
    """`tamis export --format hf` writes a datasets `save_to_disk` folder: `--data` reads it
    (a traceback from Polars looking for *.parquet before)."""
    (tmp_path / "p.yaml").write_text(PIPELINE.replace("n: 90", "n: 24"))
    st = str(tmp_path / "st")
    run("build", str(tmp_path / "p.yaml"), "--store", st, "--json")
    hf = tmp_path / "pairs_hf"
    run("export", "tone/pairs", "--to", str(hf), "--format", "hf", "--store", st, "--json")
    assert (hf / "state.json").exists()
    (tmp_path / "rm.yaml").write_text("num_train_epochs: 1\neval_fraction: 0.25\n")
    rm = run(
        "train", "rm", "--data", str(hf), "--model", "tiny", "--out", str(tmp_path / "rm"),
        "--config", str(tmp_path / "rm.yaml"), "--store", st, "--json",
    )  # fmt: skip
    assert rm["n_train"] + rm["n_eval"] == 24 and rm["n_eval"] == 6
    data = json.loads((tmp_path / "rm" / "data.json").read_text())
    assert data["data"]["path"] == str(hf.resolve()) and len(data["data"]["sha256"]) == 64
    # a folder that is neither Parquet files nor a saved dataset: a clear error, no traceback
    (tmp_path / "empty").mkdir()
    err = run(
        "train", "rm", "--data", str(tmp_path / "empty"), "--model", "tiny",
        "--out", str(tmp_path / "o"), "--json", code=1,
    )  # fmt: skip
    assert err["file"].endswith("empty") and "save_to_disk" in err["fix"]
