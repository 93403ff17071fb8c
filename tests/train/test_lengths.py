"""Training data that is dropped or cut: counts in the metrics equal an independent count with
the run's tokenizer, a warning says so, evaluation cuts as training does, and the default
max_length is the 95th percentile of the training lengths (capped by the model).

Before: `tamis train rm` trained on 203 of 400 pairs without a word (only `n_train_used` in the
metrics), DPO truncated silently and its evaluation scored full-length text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

pytest.importorskip("trl")

SMALL = {"num_train_epochs": 1, "per_device_train_batch_size": 16, "tiny_layers": 1}


def _pairs(n: int, seed: int) -> pl.DataFrame:
    """Tone pairs where some chosen replies are long and some prompts very long."""
    from tamis.curate.preferences import tone_pairs

    df = tone_pairs(n, seed=seed).select("prompt", "chosen", "rejected")
    i = pl.int_range(pl.len())
    return df.with_columns(
        chosen=pl.when(i % 3 == 0)
        .then(pl.col("chosen") + pl.col("rejected") + pl.col("rejected"))
        .otherwise(pl.col("chosen")),
        prompt=pl.when(i % 5 == 1)
        .then(pl.concat_str([pl.col("prompt")] * 8))
        .otherwise(pl.col("prompt")),
    )


def _tok(run: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(Path(run["model_dir"]))


def _ids(tok: Any, text: str) -> list[int]:
    return tok(text)["input_ids"]


def _prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def _independent(tok: Any, df: pl.DataFrame) -> tuple[list[int], list[int]]:
    """(longest sequence, prompt length) per pair: prompt + response + EOS, as TRL tokenizes."""
    eos = tok.eos_token
    longest, prompt_len = [], []
    for row in df.iter_rows(named=True):
        p = _ids(tok, row["prompt"])
        c = _ids(tok, row["prompt"] + row["chosen"] + eos)
        r = _ids(tok, row["prompt"] + row["rejected"] + eos)
        longest.append(max(len(c), len(r)))
        prompt_len.append(min(_prefix(p, c), _prefix(p, r)))
    return longest, prompt_len


def test_rm_counts_dropped_pairs_and_evaluates_the_same(tmp_path: Path, capsys) -> None:
    from tamis.train.reward import RewardRunConfig, train_reward

    train, evald = _pairs(30, seed=3), _pairs(12, seed=4)
    cfg = RewardRunConfig(max_length=200, **SMALL)
    s = train_reward(train, "tiny", tmp_path / "rm", cfg, eval_data=evald)
    tok = _tok(s)
    longest, _ = _independent(tok, train)
    dropped = sum(n > 200 for n in longest)
    assert 0 < dropped < len(longest)  # the test data is mixed
    assert s["pairs_in"] == 30 and s["pairs_dropped_too_long"] == dropped
    assert s["pairs_used"] == s["n_train_used"] == 30 - dropped and s["pairs_truncated"] == 0
    eval_longest, _ = _independent(tok, evald)
    eval_dropped = sum(n > 200 for n in eval_longest)
    assert s["eval_pairs_dropped_too_long"] == eval_dropped
    assert s["accuracy"]["n"] == s["eval_pairs_used"] == 12 - eval_dropped  # cut as in training
    assert s["max_length"] == 200 and s["max_length_source"] == "set in the config"
    err = capsys.readouterr().err
    assert f"of 30 training pairs, {dropped} dropped at max_length=200" in err
    assert "fix: set max_length" in err


def test_dpo_counts_truncated_and_dropped_pairs(tmp_path: Path, capsys) -> None:
    from tamis.train.dpo import DPORunConfig, eval_sequences, train_dpo

    train, evald = _pairs(30, seed=5), _pairs(10, seed=6)
    L = 120
    s = train_dpo(
        train, "tiny", tmp_path / "dpo", DPORunConfig(max_length=L, **SMALL), eval_data=evald
    )
    tok = _tok(s)
    for prefix, df in (("pairs", train), ("eval_pairs", evald)):
        longest, prompt_len = _independent(tok, df)
        dropped = sum(p >= L for p in prompt_len)
        truncated = sum(n > L and p < L for n, p in zip(longest, prompt_len, strict=True))
        assert dropped > 0 and truncated > 0
        assert s[f"{prefix}_dropped_too_long"] == dropped, prefix
        assert s[f"{prefix}_truncated"] == truncated, prefix
        assert s[f"{prefix}_used"] == df.height - dropped
    assert s["reward_accuracy"]["n"] == s["eval_pairs_used"]
    # evaluation sequences are cut to max_length exactly as the training collator cuts them
    chosen, rejected, dropped, truncated = eval_sequences(tok, evald, L)
    assert (dropped, truncated) == (s["eval_pairs_dropped_too_long"], s["eval_pairs_truncated"])
    assert max(len(p) + len(r) for p, r in chosen + rejected) == L
    assert "truncated at max_length=120" in capsys.readouterr().err


def test_sft_counts_truncated_examples(tmp_path: Path) -> None:
    from tamis.train.sft import SFTRunConfig, train_sft

    df = _pairs(30, seed=7).rename({"chosen": "completion"}).drop("rejected")
    train, evald = df.head(22), df.tail(8)
    L = 100
    s = train_sft(
        train, "tiny", tmp_path / "sft", SFTRunConfig(max_length=L, **SMALL), eval_data=evald
    )
    tok = _tok(s)
    for prefix, frame in (("examples", train), ("eval_examples", evald)):
        full = [
            len(_ids(tok, p + c + tok.eos_token))
            for p, c in frame.select("prompt", "completion").iter_rows()
        ]
        prompt = [len(_ids(tok, p)) for p in frame["prompt"]]
        dropped = sum(p >= L for p in prompt)  # completion-only loss: nothing left to learn
        assert s[f"{prefix}_dropped_too_long"] == dropped, prefix
        assert s[f"{prefix}_truncated"] == sum(
            n > L and p < L for n, p in zip(full, prompt, strict=True)
        ), prefix
        assert s[f"{prefix}_used"] == frame.height - dropped


def test_default_max_length_is_the_95th_percentile(tmp_path: Path) -> None:
    from tamis.train.reward import RewardRunConfig, train_reward

    train, evald = _pairs(24, seed=8), _pairs(6, seed=9)
    s = train_reward(train, "tiny", tmp_path / "rm", RewardRunConfig(**SMALL), eval_data=evald)
    longest, _ = _independent(_tok(s), train)
    p95 = int(np.percentile(longest, 95, method="higher"))
    assert s["max_length"] == p95 and s["length_max"] == max(longest)
    assert "95th percentile" in s["max_length_source"]
    assert s["pairs_dropped_too_long"] == sum(n > p95 for n in longest)
    import json

    saved = json.loads((tmp_path / "rm" / "config.json").read_text())
    assert saved["config"]["max_length"] == p95  # the run's config records the value used


def test_default_max_length_is_capped_by_the_model(tmp_path: Path) -> None:
    from tamis.train.data import texts_of
    from tamis.train.lengths import Lengths, resolve_max_length
    from tamis.train.reward import RewardRunConfig
    from tamis.train.tiny import TinyConfig, build_tiny

    model, tok = build_tiny(
        texts_of(_pairs(10, seed=1)), "reward", TinyConfig(max_position_embeddings=64)
    )
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    cfg, info = resolve_max_length(
        RewardRunConfig(), Lengths([50, 90, 300], [5, 5, 5]), str(tmp_path / "m"), tok
    )
    assert (
        cfg.max_length == 64 and "capped by the model's 64 positions" in info["max_length_source"]
    )
    cfg, info = resolve_max_length(RewardRunConfig(max_length=500), Lengths([50], [5]), "tiny", tok)
    assert cfg.max_length == 500 and info["max_length_source"] == "set in the config"
