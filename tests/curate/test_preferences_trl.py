"""The output of every input kind trains one step of TRL's DPOTrainer and RewardTrainer, as it is.

Tiny Llama-style models built from config (tamis.train.tiny) with a BPE tokenizer trained here on
the test texts: offline, CPU, a few seconds per trainer.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from preference_examples import hh_transcripts, rankings, ratings, votes

from tamis.curate.preferences import (
    pairs_from_rankings,
    pairs_from_ratings,
    pairs_from_transcripts,
    pairs_from_votes,
    tone_pairs,
)

pytest.importorskip("trl")

N = 6  # pairs per trainer run


def _texts() -> list[str]:
    out: list[str] = []
    for col in ("chosen", "rejected"):
        out += hh_transcripts(60)[col].to_list()
    return out


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[Any]:
    import trl  # noqa: F401  (import the heavy modules before freezing)

    from tamis.train.tiny import train_tokenizer

    tok = train_tokenizer(_texts(), vocab_size=512)
    # accelerate runs gc.collect() after every train(); with torch/transformers/TRL loaded that
    # walks millions of objects (~1 s each time here). Freezing the already-loaded objects keeps
    # them out of those collections; nothing is skipped for objects the test creates.
    gc.collect()
    gc.freeze()
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is faster on a shared 2-core machine
    yield tok
    torch.set_num_threads(threads)
    gc.unfreeze()


def _cfg() -> Any:
    from tamis.train.tiny import TinyConfig

    return TinyConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=1024,
    )  # fmt: skip


CPU = {
    "max_steps": 1,
    "per_device_train_batch_size": 4,
    "use_cpu": True,
    "bf16": False,
    "activation_checkpointing": False,  # else transformers 5 turns it on silently
    "report_to": "none",
    "save_strategy": "no",
    "logging_steps": 1,
    "max_length": 1024,
    "disable_tqdm": True,
    "dataloader_num_workers": 0,
}


def _snapshot(model: Any) -> list[Any]:
    return [p.detach().clone() for p in model.parameters() if p.requires_grad]


def _changed(model: Any, before: list[Any]) -> bool:
    after = [p.detach() for p in model.parameters() if p.requires_grad]
    return any(not (a == b).all() for a, b in zip(after, before, strict=True))


def train_dpo(df: pl.DataFrame, tokenizer: Any, out: Path) -> float:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from tamis.train.tiny import tiny_causal_lm

    ds = Dataset.from_polars(df)
    model, ref = (
        tiny_causal_lm(tokenizer, _cfg(), seed=0),
        tiny_causal_lm(tokenizer, _cfg(), seed=0),
    )
    before = _snapshot(model)
    args = DPOConfig(output_dir=str(out), learning_rate=1e-3, **CPU)
    trainer = DPOTrainer(
        model=model, ref_model=ref, args=args, train_dataset=ds, processing_class=tokenizer
    )
    assert len(trainer.train_dataset) == df.height  # no pair silently dropped by TRL
    loss = trainer.train().training_loss
    assert _changed(model, before)
    return float(loss)


def train_rm(df: pl.DataFrame, tokenizer: Any, out: Path) -> float:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    from tamis.train.tiny import tiny_reward_model

    ds = Dataset.from_polars(df)
    model = tiny_reward_model(tokenizer, _cfg(), seed=0)
    before = _snapshot(model)
    args = RewardConfig(output_dir=str(out), learning_rate=1e-3, **CPU)
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tokenizer)
    assert len(trainer.train_dataset) == df.height
    loss = trainer.train().training_loss
    assert _changed(model, before)
    return float(loss)


BUILDERS: dict[str, Callable[[str], pl.DataFrame]] = {
    "transcripts": lambda fmt: pairs_from_transcripts(hh_transcripts(N), format=fmt).pairs,
    "ratings": lambda fmt: (
        pairs_from_ratings(ratings(N), columns={"annotator": "annotator"}, format=fmt).pairs
    ),
    "rankings": lambda fmt: pairs_from_rankings(rankings(N), format=fmt).pairs,
    "votes": lambda fmt: pairs_from_votes(votes(N), format=fmt).pairs,
    "tone_pairs": lambda fmt: tone_pairs(N, noise=0.1, format=fmt),
}
CASES = [
    ("transcripts", "standard"),
    ("ratings", "conversational"),
    ("rankings", "standard"),
    ("votes", "conversational"),
    ("tone_pairs", "standard"),
]


@pytest.mark.parametrize(("kind", "fmt"), CASES)
def test_output_trains_dpo_and_reward_model(
    kind: str, fmt: str, tokenizer: Any, tmp_path: Path
) -> None:
    df = BUILDERS[kind](fmt)
    assert df.height >= 4
    assert math.isfinite(train_dpo(df, tokenizer, tmp_path / "dpo"))
    assert math.isfinite(train_rm(df, tokenizer, tmp_path / "rm"))


def test_pipeline_build_and_hf_export_train_as_they_are(
    tokenizer: Any, tmp_path: Path, store: Any
) -> None:
    """YAML pipeline: transcripts -> pairs -> curate -> split by prompt; tone_pairs as a generator.

    The exported `datasets` directory goes into TRL's RewardTrainer without any change.
    """
    import yaml
    from datasets import load_from_disk

    from tamis.pipelines.export import export_version
    from tamis.pipelines.runner import build

    hh_transcripts(40).write_ndjson(tmp_path / "hh.jsonl")
    spec = {
        "name": "prefs",
        "seed": 3,
        "sources": {"hh": {"path": "hh.jsonl"}},
        "steps": {
            "pairs": {"use": "preference_pairs", "input": "hh", "params": {"from": "transcripts"}},
            "clean": {"use": "preference_curate", "input": "pairs"},
            "parts": {"use": "prompt_split", "input": "clean",
                      "params": {"fractions": {"train": 0.75, "test": 0.25}}},
            "tone": {"use": "tone_pairs", "params": {"n": 30, "noise": 0.1}},
        },
    }  # fmt: skip
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(spec))
    result = build(tmp_path / "p.yaml", store)
    assert {"pairs", "pairs.sft", "pairs.prompts", "pairs.dropped", "parts.train", "parts.test",
            "tone", "tone.sft", "tone.prompts"} <= set(result.versions)  # fmt: skip
    report = store.manifest("prefs/pairs")["report"]
    assert report["pairs_out"] == 40 and report["turns_per_prompt"]["max"] == 3
    assert store.manifest("prefs/tone")["report"]["synthetic"] is True
    train, test = store.read("prefs/parts.train"), store.read("prefs/parts.test")
    assert train.height + test.height == 40
    assert not set(train["prompt"]) & set(test["prompt"])
    assert store.read("prefs/pairs.prompts").columns == ["prompt", "n_pairs"]
    html = (store.artifact_dir("prefs/pairs") / "preferences.html").read_text()
    assert "Dropped, per reason" in html and "data:image/png;base64" in html

    out = export_version(store, "prefs/parts.train", tmp_path / "hf", "hf")
    ds = load_from_disk(out["path"])
    assert ds[0]["prompt"] + ds[0]["chosen"] in set(hh_transcripts(40)["chosen"])
    assert isinstance(ds[0]["prompt_messages"], list)

    from trl import RewardConfig, RewardTrainer

    from tamis.train.tiny import tiny_reward_model

    # the trainer prepares (tokenizes) every exported row as it is; the training step itself is
    # covered per input kind above
    args = RewardConfig(output_dir=str(tmp_path / "rm"), learning_rate=1e-3, **CPU)
    trainer = RewardTrainer(model=tiny_reward_model(tokenizer, _cfg()), args=args,
                            train_dataset=ds, processing_class=tokenizer)  # fmt: skip
    assert len(trainer.train_dataset) == len(ds) == train.height
    assert set(trainer.train_dataset.column_names) >= {"chosen_ids", "rejected_ids"}
