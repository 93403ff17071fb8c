"""Bad input gets a clear error before any training starts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tamis.errors import TamisError
from tamis.train.data import check_columns, load_frame, split_eval
from tamis.train.runs import RunConfig, load_run_config

pytest.importorskip("trl")


def test_missing_columns_name_the_format_and_the_step() -> None:
    df = pl.DataFrame({"question": ["a"], "answer": ["b"]})
    with pytest.raises(TamisError) as exc:
        check_columns(df, "dpo")
    text = str(exc.value)
    assert "prompt, chosen, rejected" in text
    assert "preference_pairs" in text and "tone_pairs" in text
    assert exc.value.column == "prompt"
    with pytest.raises(TamisError, match="prompt/completion"):
        check_columns(df, "sft")
    with pytest.raises(TamisError, match="`prompt` column"):
        check_columns(df, "ppo")


def test_wrong_dtype_and_empty_data() -> None:
    with pytest.raises(TamisError, match="must hold strings"):
        check_columns(pl.DataFrame({"prompt": [1], "chosen": ["a"], "rejected": ["b"]}), "rm")
    empty = pl.DataFrame(schema={"prompt": pl.String, "chosen": pl.String, "rejected": pl.String})
    with pytest.raises(TamisError, match="is empty"):
        check_columns(empty, "rm")


def test_empty_splits() -> None:
    df = pl.DataFrame({"prompt": ["a", "b"], "chosen": ["c", "d"], "rejected": ["e", "f"]})
    with pytest.raises(TamisError, match="evaluation split is empty"):
        split_eval(df, None, 0.1, 0, "rm")  # round(0.2) = 0 held-out rows
    with pytest.raises(TamisError, match="evaluation split is empty"):
        split_eval(df, df.head(0), 0.2, 0, "rm")
    with pytest.raises(TamisError, match="eval_fraction"):
        split_eval(df, None, 1.5, 0, "rm")


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(TamisError, match="does not exist"):
        load_frame(tmp_path / "nope.parquet")
    with pytest.raises(TamisError, match="config file does not exist"):
        load_run_config(RunConfig, tmp_path / "nope.yaml")


def test_unknown_config_field_lists_valid_names(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("learning_rat: 0.1\n")
    with pytest.raises(TamisError) as exc:
        load_run_config(RunConfig, tmp_path / "c.yaml")
    assert exc.value.field == "config.learning_rat" and "learning_rate" in str(exc.value)
    assert exc.value.file == str(tmp_path / "c.yaml")
    cfg = load_run_config(RunConfig, {"learning_rate": 0.5}, seed=7, lora=None)
    assert cfg.learning_rate == 0.5 and cfg.seed == 7 and cfg.lora is False


def test_model_path_that_does_not_exist(tmp_path: Path, tone_train) -> None:
    from tamis.train.dpo import train_dpo

    with pytest.raises(TamisError, match="model path does not exist") as exc:
        train_dpo(tone_train, str(tmp_path / "no" / "model"), tmp_path / "out")
    assert "--model tiny" in str(exc.value)
    assert not (tmp_path / "out" / "checkpoints").exists()  # nothing trained


def _saved_tiny(tmp_path: Path, drop: str) -> Path:
    from tamis.train.tiny import build_tiny

    model, tok = build_tiny(["hello there", "general kenobi"] * 10)
    path = tmp_path / f"no_{drop}"
    model.save_pretrained(path)
    setattr(tok, f"{drop}_token", None)
    tok.save_pretrained(path)
    return path


def test_tokenizer_without_pad_or_eos(tmp_path: Path, tone_train) -> None:
    from tamis.train.reward import train_reward
    from tamis.train.sft import SFTRunConfig, train_sft

    no_pad = _saved_tiny(tmp_path, "pad")
    with pytest.raises(TamisError, match="no pad token") as exc:
        train_reward(tone_train, str(no_pad), tmp_path / "o1")
    assert exc.value.field == "pad_token"
    no_eos = _saved_tiny(tmp_path, "eos")
    cfg = SFTRunConfig(completion_field="chosen")
    with pytest.raises(TamisError, match="no EOS token"):
        train_sft(tone_train, str(no_eos), tmp_path / "o2", cfg)


def test_ppo_refuses_a_reward_model_with_another_vocabulary(
    tmp_path: Path, rm_run: dict, tone_train
) -> None:
    from tamis.train.ppo import train_ppo

    other = _saved_tiny(tmp_path, "unk")  # a different tiny tokenizer (other texts)
    with pytest.raises(TamisError, match="different tokenizers"):
        train_ppo(tone_train, str(other), tmp_path / "p", reward_model=rm_run["model_dir"])


def test_out_dir_that_is_not_a_run_is_refused(tmp_path: Path, tone_train) -> None:
    from tamis.train.reward import train_reward

    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "precious.txt").write_text("keep me")
    with pytest.raises(TamisError, match="not a tamis run directory"):
        train_reward(tone_train, "tiny", tmp_path / "busy")
    assert (tmp_path / "busy" / "precious.txt").exists()
