"""PPO for RLHF on torch + transformers (TRL 1.16 has no PPOTrainer).

Follows "The N implementation details of RLHF with PPO" (Huang et al., 2024):

* four models: the policy (trained), a frozen reference (the starting policy), a frozen reward
  model, and a value model initialised from the reward model (trained);
* responses are sampled with `temperature` and the same temperature scales the logits when the
  log-probs are computed for training;
* responses are truncated at the first EOS; the reward model's score is read at the last real
  token, and a response without EOS loses `missing_eos_penalty`;
* per-token reward = -kl_coef * (log pi - log ref) (the k1 KL estimator), plus the score on the
  last token; `adaptive_kl` moves kl_coef towards `kl_target` (Ziegler et al., 2019);
* GAE with gamma=1, lambda=0.95; advantages whitened over real tokens only;
* clipped policy and value losses; `ppo_epochs` passes over shuffled minibatches per rollout;
* dropout off everywhere (models stay in eval mode).

    from tamis.train.ppo import PPORunConfig, train_ppo
    summary = train_ppo(prompts_df, model="runs/sft/model", reward_model="runs/rm/model", out="runs/ppo")

Metrics: per update mean score, KL, response length and EOS rate; at the end the win rate of
the final policy over the reference on held-out prompts, judged by the reward model.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from tamis.errors import TamisError
from tamis.train.data import (
    check_columns,
    drop_null_text,
    load_frame,
    render_conversational,
    split_eval,
)
from tamis.train.job import TrainJob, run_function
from tamis.train.models import load_model, load_tokenizer, save_model
from tamis.train.ppo_learner import PPO, no_dropout
from tamis.train.runs import RunConfig, TrainSummary, prepare_run_dir


class PPORunConfig(RunConfig):
    """Config of `tamis train ppo`."""

    learning_rate: float = Field(default=3e-4, gt=0, description="AdamW learning rate.")
    total_episodes: int = Field(default=512, ge=1, description="Prompts sampled in all.")
    rollout_batch_size: int = Field(default=32, ge=1, description="Prompts per rollout/update.")
    mini_batch_size: int = Field(
        default=8, ge=1, description="Sequences per gradient step (at most rollout_batch_size)."
    )
    ppo_epochs: int = Field(default=4, description="Passes over each rollout.")
    response_length: int = Field(default=24, description="Maximum new tokens.")
    max_prompt_length: int = Field(
        default=64, description="Prompts are cut (from the left) to this, in tokens."
    )
    temperature: float = Field(
        default=0.7, description="Sampling temperature; also scales logits in training."
    )
    kl_coef: float = Field(default=0.05, description="Weight of the per-token KL penalty.")
    adaptive_kl: bool = Field(default=False, description="Adapt kl_coef to kl_target.")
    kl_target: float = Field(default=6.0, description="Adaptive KL: target KL (nats/seq).")
    kl_horizon: int = Field(default=10000, description="Adaptive KL: horizon (episodes).")
    gamma: float = Field(default=1.0, description="GAE discount.")
    lam: float = Field(default=0.95, description="GAE lambda.")
    cliprange: float = Field(default=0.2, description="Policy ratio clip range.")
    cliprange_value: float = Field(default=0.2, description="Value clip range.")
    vf_coef: float = Field(default=0.1, description="Weight of the value loss.")
    missing_eos_penalty: float = Field(
        default=1.0, description="Subtracted from the score of a response without EOS."
    )
    eval_prompts: int = Field(
        default=64, description="Held-out prompts for the final win rate (at most)."
    )

    @field_validator("mini_batch_size")
    @classmethod
    def _fits_a_rollout(cls, value: int, info: ValidationInfo) -> int:
        rollout = info.data.get("rollout_batch_size")
        if rollout is not None and value > rollout:
            raise ValueError(
                f"mini_batch_size ({value}) is larger than rollout_batch_size ({rollout}): set "
                "mini_batch_size <= rollout_batch_size"
            )
        return value


def _check_vocab(tok: Any, reward_tok: Any, model: str, reward_model: str) -> None:
    if tok.get_vocab() != reward_tok.get_vocab():
        raise TamisError(
            f"the policy '{model}' and the reward model '{reward_model}' use different "
            "tokenizers; PPO scores the policy's tokens directly and initialises the value "
            "model from the reward model, so they must share one vocabulary",
            field="reward_model",
            fix="train the reward model from the same base model (or use --model tiny, which "
            "then reuses the reward model's tokenizer)",
        )


def prompt_lengths(
    tok: Any, train: Any, evald: Any, max_prompt_length: int
) -> dict[str, int | str]:
    """Count the prompts cut (from the left) to `max_prompt_length` tokens; warn when any is."""
    out: dict[str, int | str] = {"max_prompt_length": max_prompt_length}
    for prefix, split, frame in (
        ("prompts", "training", train),
        ("eval_prompts", "evaluation", evald),
    ):
        lens = [
            len(tok(p, add_special_tokens=False)["input_ids"]) for p in frame["prompt"].to_list()
        ]
        cut = sum(n > max_prompt_length for n in lens)
        out.update({f"{prefix}_in": len(lens), f"{prefix}_truncated": cut})
        if cut:
            print(
                f"warning: tamis train ppo: {cut} of {len(lens)} {split} prompts are longer than "
                f"max_prompt_length={max_prompt_length} tokens and are cut from the left (the "
                f"longest has {max(lens)}).\n  fix: raise max_prompt_length in the config",
                file=sys.stderr,
            )
    return out


def _fit(job: TrainJob, cfg: PPORunConfig) -> TrainSummary:
    """PPO-train `model` against the frozen `reward_model`; write the run dir; return summary.

    `ref_model` defaults to the starting policy (the usual choice); when given, it is the
    frozen reference for the KL penalty and the win rate instead.
    """
    import torch

    model, ref_model, reward_model = job.model, job.ref_model, str(job.reward_model)
    df = load_frame(job.data)
    check_columns(df, "ppo")
    df = drop_null_text(df, ["prompt"])
    evald = None
    if job.eval_data is not None:
        evald = load_frame(job.eval_data, what="eval data")
        check_columns(evald, "ppo", what="eval data")
        evald = drop_null_text(evald, ["prompt"])
    train, evald = split_eval(df, evald, cfg.eval_fraction, cfg.seed, "ppo")
    rtok = load_tokenizer(reward_model, cfg.pad_token)
    reward, _ = load_model(reward_model, "reward", cfg, tokenizer=rtok)
    policy, tok = load_model(model, "causal", cfg, tokenizer=rtok if model == "tiny" else None)
    _check_vocab(tok, rtok, model, reward_model)
    train = render_conversational(train, tok).unique("prompt", maintain_order=True)
    evald = render_conversational(evald, tok)
    lengths = prompt_lengths(tok, train, evald.head(cfg.eval_prompts), cfg.max_prompt_length)
    run = prepare_run_dir(job.out)
    torch.manual_seed(cfg.seed)
    trainer = PPO(policy, reward, tok, cfg)
    if ref_model is not None:
        trainer.ref = no_dropout(load_model(ref_model, "causal", cfg, tokenizer=tok)[0])
        trainer.ref.requires_grad_(False)
    t0 = time.time()
    history = trainer.train(train["prompt"].to_list(), job.progress)
    train_seconds = time.time() - t0
    final = trainer.win_rate(evald["prompt"].to_list()[: cfg.eval_prompts])
    k = max(1, len(history) // 4)
    first, last = history[:k], history[-k:]

    def mean(rows: list[dict[str, float]], key: str) -> float:
        return sum(r[key] for r in rows) / len(rows)

    metrics = {
        **final,
        "score_first": mean(first, "score"),
        "score_last": mean(last, "score"),
        "kl_last": mean(last, "kl"),
        "kl_max": max(r["kl"] for r in history),
        "response_length_last": mean(last, "response_length"),
        "eos_rate_last": mean(last, "eos_rate"),
        **lengths,
        "n_train_prompts": train.height,
        "n_eval_prompts": min(evald.height, cfg.eval_prompts),
        "episodes": history[-1]["episodes"],
        "train_seconds": train_seconds,
        "samples_per_second": history[-1]["episodes"] / train_seconds,
        "history": history,
    }
    save_model(trainer.policy, tok, run / "model")
    ids = {"reward_model": reward_model, "ref_model": ref_model or "initial policy"}
    return job.finish(run, "ppo", cfg, metrics, **ids)


train_ppo = run_function("ppo", PPORunConfig, _fit, models=("reward_model", "ref_model"))
