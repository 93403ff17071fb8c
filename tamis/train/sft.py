"""Supervised fine-tuning with TRL's `SFTTrainer` on prompt/completion or messages data.

    from tamis.train.sft import SFTRunConfig, train_sft
    summary = train_sft(df, model="tiny", out="runs/sft", config=SFTRunConfig(num_train_epochs=2))

Metrics: train loss (history), held-out eval loss before and after training, and perplexity.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
from pydantic import Field

from tamis.train import models, runs
from tamis.train.data import check_columns, drop_null_text, texts_of
from tamis.train.data import to_dataset as _to_dataset
from tamis.train.job import TrainJob, run_function
from tamis.train.lengths import check_split_lengths, sft_lengths
from tamis.train.metrics import perplexity
from tamis.train.runs import RunConfig, TrainSummary, prepare_run_dir


class SFTRunConfig(RunConfig):
    """Config of `tamis train sft` (TRL SFTTrainer)."""

    completion_only_loss: bool = Field(
        default=True,
        description="Loss on completion (or assistant) tokens only; false trains on the prompt too.",
    )
    completion_field: str = Field(
        default="completion",
        description="Column holding the completion; set to `chosen` to SFT on preference pairs.",
    )


def prepare(df: pl.DataFrame, cfg: SFTRunConfig) -> tuple[pl.DataFrame, list[str]]:
    if cfg.completion_field != "completion" and cfg.completion_field in df.columns:
        df = df.drop("completion", strict=False).rename({cfg.completion_field: "completion"})
    cols = check_columns(df, "sft")
    return drop_null_text(df, cols), cols


def build_trainer(
    train: pl.DataFrame,
    evald: pl.DataFrame,
    cols: list[str],
    model: str,
    cfg: SFTRunConfig,
    out: Path,
    tok: Any,
) -> Any:
    """The TRL SFTTrainer exactly as tamis configures it."""
    from trl import SFTConfig, SFTTrainer

    net, tok = models.load_model(model, "causal", cfg, tokenizer=tok)
    messages = cols == ["messages"]
    args = SFTConfig(
        **models.cpu_args(cfg, out),
        completion_only_loss=cfg.completion_only_loss if not messages else None,
        assistant_only_loss=cfg.completion_only_loss and messages,
        packing=False,
        eos_token=tok.eos_token,
    )
    return models.make_trainer(
        SFTTrainer,
        net,
        args,
        tok,
        cfg,
        "CAUSAL_LM",
        train_dataset=_to_dataset(train, cols),
        eval_dataset=_to_dataset(evald, cols),
    )


def _fit(job: TrainJob, cfg: SFTRunConfig) -> TrainSummary:
    """Fine-tune `model` on `data`; write the run directory `out`; return the summary."""
    model = job.model
    train, evald, cols = job.split(lambda df: prepare(df, cfg), cfg, "sft")
    tok = models.get_tokenizer(model, cfg, texts_of(train))
    only = cfg.completion_only_loss
    lengths_of = sft_lengths(tok, train, cols, only), sft_lengths(tok, evald, cols, only)
    cfg, lengths = check_split_lengths("sft", cfg, *lengths_of, model, tok)
    run = prepare_run_dir(job.out)
    trainer = build_trainer(train, evald, cols, model, cfg, run, tok)
    # the trainer's own counts of what it kept win (they should never differ from ours)
    for prefix, ds, frame in (
        ("examples", trainer.train_dataset, train),
        ("eval_examples", trainer.eval_dataset, evald),
    ):
        lengths[f"{prefix}_used"] = len(ds)
        lengths[f"{prefix}_dropped_too_long"] = frame.height - len(ds)
    if job.progress is not None:
        trainer.add_callback(models.progress_callback(job.progress))

    before = trainer.evaluate()["eval_loss"]
    result = trainer.train()
    after = trainer.evaluate()["eval_loss"]
    n_tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * cfg.num_train_epochs
    runtime = result.metrics["train_runtime"]
    history = [
        {"step": h["step"], "loss": h["loss"]} for h in trainer.state.log_history if "loss" in h
    ]
    metrics = {
        "train_loss": result.training_loss,
        "train_loss_first": history[0]["loss"] if history else None,
        "train_loss_last": history[-1]["loss"] if history else None,
        "eval_loss_initial": before,
        "eval_loss": after,
        "eval_perplexity_initial": perplexity(before),
        "eval_perplexity": perplexity(after),
        "n_train": train.height,
        "n_eval": evald.height,
        **lengths,
        **runs.throughput(n_tokens, runtime),
        "history": history,
    }
    models.save_model(trainer.model, trainer.processing_class, run / "model")
    return job.finish(run, "sft", cfg, metrics)


train_sft = run_function("sft", SFTRunConfig, _fit)
