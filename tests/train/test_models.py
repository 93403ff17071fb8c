"""Model directories: pickled weights are refused with a clear message (safetensors only)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")

from typer.testing import CliRunner  # noqa: E402

from tamis.cli import app  # noqa: E402
from tamis.errors import TamisError  # noqa: E402


def _pickled_model_dir(root: Path, tone_train) -> Path:
    """A tiny model saved the old way: config, tokenizer and a pickled pytorch_model.bin."""
    import torch

    from tamis.train.data import texts_of
    from tamis.train.tiny import build_tiny

    model, tok = build_tiny(texts_of(tone_train), kind="reward")
    out = root / "pickled"
    model.config.save_pretrained(out)
    tok.save_pretrained(out)
    torch.save(model.state_dict(), out / "pytorch_model.bin")
    return out


def test_pickled_weights_are_refused(tmp_path: Path, tone_train) -> None:
    from tamis.train.models import load_model
    from tamis.train.reward import RewardRunConfig

    model_dir = _pickled_model_dir(tmp_path, tone_train)
    with pytest.raises(TamisError) as caught:
        load_model(str(model_dir), "reward", RewardRunConfig())
    assert "safetensors only" in caught.value.message and caught.value.file == str(model_dir)
    assert caught.value.details["pickled"] == ["pytorch_model.bin"]

    tone_train.write_parquet(tmp_path / "pairs.parquet")
    result = CliRunner().invoke(
        app,
        ["train", "rm", "--data", str(tmp_path / "pairs.parquet"), "--model", str(model_dir),
         "--out", str(tmp_path / "run"), "--json"],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    err = json.loads(result.stdout)
    assert "pickled" in err["error"] and "save_pretrained" in err["fix"]
    assert "Traceback" not in result.output
    assert not (tmp_path / "run" / "model").exists()


def test_safetensors_directory_still_loads(tmp_path: Path, tone_train) -> None:
    from tamis.train.models import load_model
    from tamis.train.reward import RewardRunConfig

    model_dir = _pickled_model_dir(tmp_path, tone_train)
    from transformers import AutoModelForSequenceClassification

    # converted once (where the file is trusted): now only safetensors is read
    net = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
    net.save_pretrained(model_dir)  # writes model.safetensors beside the .bin
    loaded, tok = load_model(str(model_dir), "reward", RewardRunConfig())
    assert loaded.config.num_labels == 1 and tok.pad_token is not None
