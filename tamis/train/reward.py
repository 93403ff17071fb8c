"""Reward models with TRL's `RewardTrainer` (`AutoModelForSequenceClassification`, num_labels=1).

    from tamis.train.reward import RewardRunConfig, train_reward
    summary = train_reward(pairs, model="tiny", out="runs/rm")

Metrics on held-out pairs: pairwise accuracy (with CI), mean margin, ECE of the Bradley-Terry
probability sigmoid(r_chosen - r_rejected), and the correlation of reward with response length
(a reward-hacking probe: a strong positive value means the model may simply pay for length).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from tamis.train import models
from tamis.train.data import (
    check_columns,
    drop_null_text,
    render_conversational,
    texts_of,
)
from tamis.train.data import to_dataset as _to_dataset
from tamis.train.job import TrainJob, run_function
from tamis.train.lengths import check_split_lengths, pair_lengths
from tamis.train.metrics import ECE_DEFINITION, bt_ece, pairwise_accuracy, pearson
from tamis.train.runs import RunConfig, TrainSummary, prepare_run_dir


class RewardRunConfig(RunConfig):
    """Config of `tamis train rm` (TRL RewardTrainer, Bradley-Terry loss)."""

    center_rewards_coefficient: float | None = Field(
        default=None,
        description="Weight of the auxiliary loss that keeps rewards centred on zero.",
    )
    eval_batch_size: int = Field(default=32, description="Batch size when scoring.")


def score_texts(model: Any, tok: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Scalar rewards for whole texts, tokenized as in training (`tok(text)`, EOS at the end)."""
    import torch

    model.eval()
    eos = tok.eos_token
    out: list[float] = []
    device = next(model.parameters()).device
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            chunk = [t if t.endswith(eos) else t + eos for t in texts[i : i + batch_size]]
            enc = tok(chunk, return_tensors="pt", padding=True)
            logits = model(**{k: v.to(device) for k, v in enc.items()}).logits
            out.extend(logits[:, 0].float().cpu().tolist())
    return np.asarray(out)


def keep_within(tok: Any, df: pl.DataFrame, max_length: int | None) -> pl.DataFrame:
    """The pairs `RewardTrainer` would keep at `max_length` (both sequences fit whole)."""
    if max_length is None:
        return df
    lengths = pair_lengths(tok, df).total
    return df.filter(pl.Series([n <= max_length for n in lengths], dtype=pl.Boolean))


def pair_metrics(
    model: Any, tok: Any, df: pl.DataFrame, batch_size: int = 32, max_length: int | None = None
) -> dict[str, Any]:
    """Held-out accuracy, margin, ECE and reward-length correlation of a reward model.

    With `max_length`, pairs longer than it are left out, as in training (the run reports how
    many); scores are read on prompt + response + EOS tokenized as in training.
    """
    df = keep_within(tok, df, max_length)
    prompts = df["prompt"].to_list() if "prompt" in df.columns else [""] * df.height
    chosen = [p + c for p, c in zip(prompts, df["chosen"].to_list(), strict=True)]
    rejected = [p + r for p, r in zip(prompts, df["rejected"].to_list(), strict=True)]
    rc = score_texts(model, tok, chosen, batch_size)
    rr = score_texts(model, tok, rejected, batch_size)
    margins = rc - rr
    lengths = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in df["chosen"].to_list()]
    lengths += [
        len(tok(t, add_special_tokens=False)["input_ids"]) for t in df["rejected"].to_list()
    ]
    return {
        "accuracy": pairwise_accuracy(rc, rr),
        "mean_margin": float(margins.mean()),
        "ece": bt_ece(margins),
        "ece_definition": ECE_DEFINITION,
        "reward_length_corr": pearson(np.concatenate([rc, rr]).tolist(), lengths),
        "mean_reward_chosen": float(rc.mean()),
        "mean_reward_rejected": float(rr.mean()),
    }


def prepare(df: pl.DataFrame, method: str = "rm") -> tuple[pl.DataFrame, list[str]]:
    cols = check_columns(df, method)
    return drop_null_text(df, cols), cols


def build_trainer(
    train: pl.DataFrame, cols: list[str], model: str, cfg: RewardRunConfig, out: Path, tok: Any
) -> Any:
    """The TRL RewardTrainer as tamis configures it (`train` already rendered to text)."""
    from trl import RewardConfig, RewardTrainer

    net, tok = models.load_model(model, "reward", cfg, tokenizer=tok)
    args = RewardConfig(
        **models.cpu_args(cfg, out),
        center_rewards_coefficient=cfg.center_rewards_coefficient,
        disable_dropout=True,
        eos_token=tok.eos_token,
    )
    return models.make_trainer(
        RewardTrainer, net, args, tok, cfg, "SEQ_CLS", train_dataset=_to_dataset(train, cols)
    )


def _fit(job: TrainJob, cfg: RewardRunConfig) -> TrainSummary:
    """Train a reward model on preference pairs; write the run directory; return the summary."""
    model = job.model
    train, evald, cols = job.split(prepare, cfg, "rm")
    tok = models.get_tokenizer(model, cfg, texts_of(train))
    train, evald = render_conversational(train, tok), render_conversational(evald, tok)
    lengths_of = pair_lengths(tok, train), pair_lengths(tok, evald)
    cfg, lengths = check_split_lengths("rm", cfg, *lengths_of, model, tok)
    run = prepare_run_dir(job.out)
    trainer = build_trainer(train, cols, model, cfg, run, tok)
    used = len(trainer.train_dataset)
    if used != lengths["pairs_used"]:  # the trainer's own count wins (it should never differ)
        lengths.update(pairs_used=used, pairs_dropped_too_long=train.height - used)
    if job.progress is not None:
        trainer.add_callback(models.progress_callback(job.progress))
    result = trainer.train()
    tok = trainer.processing_class
    history = [
        {k: h[k] for k in ("step", "loss", "accuracy", "margin") if k in h}
        for h in trainer.state.log_history
        if "loss" in h
    ]
    metrics = {
        **pair_metrics(trainer.model, tok, evald, cfg.eval_batch_size, cfg.max_length),
        "train_loss": result.training_loss,
        "n_train": train.height,
        "n_train_used": used,
        "n_eval": evald.height,
        **lengths,
        "train_seconds": result.metrics["train_runtime"],
        "history": history,
    }
    models.save_model(trainer.model, tok, run / "model")
    return job.finish(run, "rm", cfg, metrics)


train_reward = run_function("rm", RewardRunConfig, _fit)
