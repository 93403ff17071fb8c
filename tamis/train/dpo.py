"""Direct Preference Optimization with TRL's `DPOTrainer` and an explicit reference model.

    from tamis.train.dpo import DPORunConfig, train_dpo
    summary = train_dpo(pairs, model="tiny", out="runs/dpo", config=DPORunConfig(beta=0.1))

The reference is `ref_model` (a path) when given, else a frozen copy of the starting policy.
Metrics on held-out pairs: reward accuracy (implicit reward beta * (log pi - log ref) of chosen
above rejected, with CI), mean margin, and the per-token KL(policy || reference) computed exactly
over the vocabulary on the held-out prompt+response tokens (teacher-forced).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from tamis.errors import TamisError
from tamis.train import models, runs
from tamis.train.data import (
    check_columns,
    drop_null_text,
    is_conversational,
    render_conversational,
    texts_of,
)
from tamis.train.data import to_dataset as _to_dataset
from tamis.train.job import TrainJob, run_function
from tamis.train.lengths import check_split_lengths, pair_ids, pair_lengths
from tamis.train.metrics import pairwise_accuracy
from tamis.train.runs import RunConfig, TrainSummary, prepare_run_dir


class DPORunConfig(RunConfig):
    """Config of `tamis train dpo` (TRL DPOTrainer)."""

    beta: float = Field(
        default=0.1, description="Strength of the implicit KL constraint to the reference."
    )
    loss_type: str = Field(
        default="sigmoid",
        description="DPO loss: sigmoid (DPO), hinge, ipo, robust, bco_pair, apo_zero, ...",
    )
    label_smoothing: float = Field(
        default=0.0, description="Assumed share of flipped labels (robust/cDPO losses)."
    )
    eval_batch_size: int = Field(default=32, description="Batch size when scoring.")


def eval_sequences(
    tok: Any, df: pl.DataFrame, max_length: int | None
) -> tuple[list[tuple[list[int], list[int]]], list[tuple[list[int], list[int]]], int, int]:
    """(chosen, rejected) as (prompt ids, response ids) pairs, tokenized and cut as
    `DPOTrainer` does in training: the first `max_length` tokens of prompt + response are kept,
    and pairs whose prompt alone fills `max_length` are left out. Also returns how many pairs
    were left out and how many were cut."""
    prompts = df["prompt"].to_list() if "prompt" in df.columns else [""] * df.height
    chosen, rejected = [], []
    dropped = truncated = 0
    for prompt, c, r in zip(prompts, df["chosen"].to_list(), df["rejected"].to_list(), strict=True):
        p, cid, rid = pair_ids(tok, prompt, c, r)
        if max_length is not None:
            if len(p) >= max_length:
                dropped += 1
                continue
            room = max_length - len(p)
            truncated += int(len(cid) > room or len(rid) > room)
            cid, rid = cid[:room], rid[:room]
        chosen.append((p, cid))
        rejected.append((p, rid))
    return chosen, rejected, dropped, truncated


def response_stats(
    policy: Any,
    ref: Any,
    pad_id: int,
    seqs: list[tuple[list[int], list[int]]],
    batch_size: int = 32,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Sum of response log-probs under policy and reference, and the mean per-token KL(pi||ref),
    over (prompt ids, response ids) sequences."""
    import torch

    policy.eval()
    ref.eval()
    lp_pi: list[float] = []
    lp_ref: list[float] = []
    kl_sum, kl_n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(seqs), batch_size):
            chunk = seqs[i : i + batch_size]
            width = max(len(a) + len(b) for a, b in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            resp = torch.zeros_like(ids, dtype=torch.bool)
            for j, (a, b) in enumerate(chunk):
                ids[j, : len(a) + len(b)] = torch.tensor(a + b)
                mask[j, : len(a) + len(b)] = 1
                resp[j, len(a) : len(a) + len(b)] = True
            lpi = torch.log_softmax(policy(input_ids=ids, attention_mask=mask).logits[:, :-1], -1)
            lre = torch.log_softmax(ref(input_ids=ids, attention_mask=mask).logits[:, :-1], -1)
            target, tmask = ids[:, 1:], resp[:, 1:]
            tok_pi = lpi.gather(-1, target[..., None])[..., 0]
            tok_ref = lre.gather(-1, target[..., None])[..., 0]
            lp_pi.extend((tok_pi * tmask).sum(-1).tolist())
            lp_ref.extend((tok_ref * tmask).sum(-1).tolist())
            kl = (lpi.exp() * (lpi - lre)).sum(-1)
            kl_sum += float((kl * tmask).sum())
            kl_n += int(tmask.sum())
    return np.asarray(lp_pi), np.asarray(lp_ref), kl_sum / max(kl_n, 1)


def dpo_metrics(
    policy: Any,
    ref: Any,
    tok: Any,
    df: pl.DataFrame,
    beta: float,
    batch_size: int = 32,
    max_length: int | None = None,
) -> dict[str, Any]:
    """Held-out implicit-reward accuracy, margins and KL, on pairs cut as in training."""
    chosen, rejected, _, _ = eval_sequences(tok, df, max_length)
    c_pi, c_ref, kl_c = response_stats(policy, ref, tok.pad_token_id, chosen, batch_size)
    r_pi, r_ref, kl_r = response_stats(policy, ref, tok.pad_token_id, rejected, batch_size)
    rc, rr = beta * (c_pi - c_ref), beta * (r_pi - r_ref)
    return {
        "reward_accuracy": pairwise_accuracy(rc, rr),
        "reward_margin": float((rc - rr).mean()),
        "reward_chosen": float(rc.mean()),
        "reward_rejected": float(rr.mean()),
        "kl_to_ref_per_token": (kl_c + kl_r) / 2,
        "logp_chosen": float(c_pi.mean()),
        "logp_rejected": float(r_pi.mean()),
    }


def prepare(df: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    cols = check_columns(df, "dpo")
    if "prompt" not in cols and not is_conversational(df):
        df = df.with_columns(pl.lit("").alias("prompt"))
        cols = ["prompt", *cols]
    return drop_null_text(df, cols), cols


def check_ref_model(model: str, ref_model: str | None) -> None:
    """--ref-model needs a policy with a fixed vocabulary (not `tiny`, whose tokenizer is trained
    per run)."""
    if ref_model is not None and model == "tiny":
        raise TamisError(
            "--ref-model cannot be combined with --model tiny (the tiny tokenizer is trained "
            "per run, so the vocabularies would differ)",
            field="ref_model",
            fix="drop --ref-model (the reference is then a frozen copy of the tiny policy)",
        )


def build_trainer(
    train: pl.DataFrame,
    cols: list[str],
    model: str,
    cfg: DPORunConfig,
    out: Path,
    tok: Any,
    ref_model: str | None = None,
) -> tuple[Any, Any]:
    """(TRL DPOTrainer as tamis configures it, the frozen reference model); `train` is already
    rendered to text with `tok`."""
    from trl import DPOConfig, DPOTrainer

    check_ref_model(model, ref_model)
    net, tok = models.load_model(model, "causal", cfg, tokenizer=tok)
    if ref_model is not None:
        ref, _ = models.load_model(ref_model, "causal", cfg, tokenizer=tok)
    else:
        ref = copy.deepcopy(net)
    ref.eval().requires_grad_(False)
    args = DPOConfig(
        **models.cpu_args(cfg, out),
        beta=cfg.beta,
        loss_type=[cfg.loss_type],
        label_smoothing=cfg.label_smoothing,
        disable_dropout=True,
    )
    trainer = models.make_trainer(
        DPOTrainer,
        net,
        args,
        tok,
        cfg,
        "CAUSAL_LM",
        ref_model=ref,
        train_dataset=_to_dataset(train, cols),
    )
    return trainer, ref


def _fit(job: TrainJob, cfg: DPORunConfig) -> TrainSummary:
    """DPO-train `model` on preference pairs; write the run directory; return the summary.

    `ref_model` is the frozen reference (default: a copy of the initial policy).
    """
    model, ref_model = job.model, job.ref_model
    train, evald, cols = job.split(prepare, cfg, "dpo")
    check_ref_model(model, ref_model)
    tok = models.get_tokenizer(model, cfg, texts_of(train))
    train, evald = render_conversational(train, tok), render_conversational(evald, tok)
    lengths_of = pair_lengths(tok, train), pair_lengths(tok, evald)
    cfg, lengths = check_split_lengths("dpo", cfg, *lengths_of, model, tok)
    run = prepare_run_dir(job.out)
    trainer, ref = build_trainer(train, cols, model, cfg, run, tok, ref_model)
    used = len(trainer.train_dataset)
    cap: int = lengths["max_length"]
    truncated = sum(
        len(p) + max(len(c), len(r)) > cap
        for p, c, r in zip(
            trainer.train_dataset["prompt_ids"],
            trainer.train_dataset["chosen_ids"],
            trainer.train_dataset["rejected_ids"],
            strict=True,
        )
    )
    # the trainer's own tokens win (they should never differ from the count made beforehand)
    lengths.update(
        pairs_used=used, pairs_dropped_too_long=train.height - used, pairs_truncated=truncated
    )
    if job.progress is not None:
        trainer.add_callback(models.progress_callback(job.progress))
    result = trainer.train()
    tok = trainer.processing_class
    n_tokens = (
        sum(
            min(len(p) + len(c), cap) + min(len(p) + len(r), cap)  # as the collator cuts
            for p, c, r in zip(
                trainer.train_dataset["prompt_ids"],
                trainer.train_dataset["chosen_ids"],
                trainer.train_dataset["rejected_ids"],
                strict=True,
            )
        )
        * cfg.num_train_epochs
    )
    runtime = result.metrics["train_runtime"]
    keys = ("step", "loss", "rewards/accuracies", "rewards/margins")
    history = [{k: h[k] for k in keys if k in h} for h in trainer.state.log_history if "loss" in h]
    metrics = {
        **dpo_metrics(
            trainer.model, ref, tok, evald, cfg.beta, cfg.eval_batch_size, cfg.max_length
        ),
        "train_loss": result.training_loss,
        "n_train": train.height,
        "n_eval": evald.height,
        **lengths,
        **runs.throughput(n_tokens, runtime),
        "history": history,
    }
    models.save_model(trainer.model, tok, run / "model")
    return job.finish(run, "dpo", cfg, metrics, ref_model=ref_model or "copy of the initial policy")


train_dpo = run_function("dpo", DPORunConfig, _fit, models=("ref_model",))
