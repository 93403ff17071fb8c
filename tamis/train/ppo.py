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

import copy
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.errors import TamisError
from tamis.train import ppo_core as core
from tamis.train.data import (
    check_columns,
    drop_null_text,
    load_frame,
    render_conversational,
    split_eval,
)
from tamis.train.metrics import proportion
from tamis.train.models import load_model, load_tokenizer, lora_config, save_model
from tamis.train.offline import offline_for
from tamis.train.runs import RunConfig, prepare_run_dir, write_run


@dataclass
class PPORunConfig(RunConfig):
    """Config of `tamis train ppo`."""

    learning_rate: float = field(default=3e-4, metadata={"help": "AdamW learning rate."})
    total_episodes: int = field(default=512, metadata={"help": "Prompts sampled in all."})
    rollout_batch_size: int = field(default=32, metadata={"help": "Prompts per rollout/update."})
    mini_batch_size: int = field(default=8, metadata={"help": "Sequences per gradient step."})
    ppo_epochs: int = field(default=4, metadata={"help": "Passes over each rollout."})
    response_length: int = field(default=24, metadata={"help": "Maximum new tokens."})
    max_prompt_length: int = field(default=64, metadata={"help": "Prompts are cut to this."})
    temperature: float = field(
        default=0.7, metadata={"help": "Sampling temperature; also scales logits in training."}
    )
    kl_coef: float = field(default=0.05, metadata={"help": "Weight of the per-token KL penalty."})
    adaptive_kl: bool = field(default=False, metadata={"help": "Adapt kl_coef to kl_target."})
    kl_target: float = field(default=6.0, metadata={"help": "Adaptive KL: target KL (nats/seq)."})
    kl_horizon: int = field(default=10000, metadata={"help": "Adaptive KL: horizon (episodes)."})
    gamma: float = field(default=1.0, metadata={"help": "GAE discount."})
    lam: float = field(default=0.95, metadata={"help": "GAE lambda."})
    cliprange: float = field(default=0.2, metadata={"help": "Policy ratio clip range."})
    cliprange_value: float = field(default=0.2, metadata={"help": "Value clip range."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss."})
    missing_eos_penalty: float = field(
        default=1.0, metadata={"help": "Subtracted from the score of a response without EOS."}
    )
    eval_prompts: int = field(
        default=64, metadata={"help": "Held-out prompts for the final win rate (at most)."}
    )


class _Scorer:
    """Per-token scalar head of a sequence-classification model (reward or value)."""

    def __init__(self, model: Any) -> None:
        if not hasattr(model, "score") or not hasattr(model, model.base_model_prefix):
            raise TamisError(
                f"{type(model).__name__} has no `score` head over a decoder backbone, so PPO "
                "cannot read per-token rewards/values from it",
                field="reward_model",
                fix="train the reward model from a decoder (causal LM) checkpoint, e.g. "
                "`tamis train rm --model <causal lm>` or --model tiny",
            )
        self.model = model
        self.backbone = getattr(model, model.base_model_prefix)

    def __call__(self, ids: Any, mask: Any, pos: Any) -> Any:
        hidden = self.backbone(input_ids=ids, attention_mask=mask, position_ids=pos)[0]
        return self.model.score(hidden)[..., 0]


def _positions(mask: Any) -> Any:
    import torch

    return (torch.cumsum(mask, dim=1) - 1).clamp(min=0)


def _no_dropout(model: Any) -> Any:
    for key, value in vars(model.config).items():
        if "dropout" in key and isinstance(value, float):
            setattr(model.config, key, 0.0)
    return model.eval()


def sample(
    policy: Any, query: Any, qmask: Any, n_new: int, temperature: float, eos: int, pad: int
) -> Any:
    """Sample up to `n_new` tokens per row from softmax(logits / temperature), KV-cached.

    Rows stop at their first EOS (later tokens are pad); the result is `[B, n_new]`.
    """
    import torch

    mask, pos = qmask, _positions(qmask)
    out = policy(input_ids=query, attention_mask=mask, position_ids=pos, use_cache=True)
    done = torch.zeros(query.shape[0], dtype=torch.bool)
    tokens = torch.full((query.shape[0], n_new), pad, dtype=torch.long)
    for t in range(n_new):
        probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1)
        nxt = torch.multinomial(probs, 1)[:, 0].masked_fill(done, pad)
        tokens[:, t] = nxt
        done |= nxt == eos
        if bool(done.all()) or t == n_new - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        pos = pos[:, -1:] + 1
        out = policy(
            input_ids=nxt[:, None],
            attention_mask=mask,
            position_ids=pos,
            past_key_values=out.past_key_values,
            use_cache=True,
        )
    return tokens


class PPO:
    """One PPO run: holds the four models and runs rollouts and updates."""

    def __init__(self, policy: Any, reward: Any, tok: Any, cfg: PPORunConfig) -> None:
        import torch

        self.cfg, self.tok = cfg, tok
        self.ref = _no_dropout(copy.deepcopy(policy)).requires_grad_(False)
        if cfg.lora:  # LoRA adapters on the policy; the reference stays the full base model
            from peft import get_peft_model

            policy = get_peft_model(policy, lora_config(cfg, "CAUSAL_LM"))
        self.policy = _no_dropout(policy)
        self.reward = _Scorer(_no_dropout(reward).requires_grad_(False))
        self.value_model = copy.deepcopy(reward).requires_grad_(True)
        self.value = _Scorer(self.value_model)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        params += list(self.value_model.parameters())
        self.opt = torch.optim.AdamW(params, lr=cfg.learning_rate, eps=1e-5)
        self.kl = core.AdaptiveKL(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        self.gen = torch.Generator().manual_seed(cfg.seed)

    def encode(self, prompts: list[str]) -> tuple[Any, Any]:
        """Left-padded prompt ids and mask."""
        import torch

        ids = [
            self.tok(p, add_special_tokens=False)["input_ids"][-self.cfg.max_prompt_length :]
            for p in prompts
        ]
        width = max(len(x) for x in ids)
        out = torch.full((len(ids), width), self.tok.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(out)
        for i, x in enumerate(ids):
            out[i, width - len(x) :] = torch.tensor(x, dtype=torch.long)
            mask[i, width - len(x) :] = 1
        return out, mask

    def respond(self, model: Any, query: Any, qmask: Any) -> dict[str, Any]:
        """Sample, truncate at EOS and score: the parts of a rollout that need no gradient."""
        import torch

        c, eos, pad = self.cfg, self.tok.eos_token_id, self.tok.pad_token_id
        with torch.no_grad():
            resp = sample(model, query, qmask, c.response_length, c.temperature, eos, pad)
            rmask = core.eos_mask(resp, eos)
            resp = core.apply_mask(resp, rmask, pad)
            ids, mask = torch.cat([query, resp], 1), torch.cat([qmask, rmask], 1)
            pos = _positions(mask)
            last = query.shape[1] + core.last_index(rmask)
            rows = torch.arange(ids.shape[0])
            scores = self.reward(ids, mask, pos)[rows, last]
            has_eos = (resp == eos).any(dim=1)
            scores = torch.where(has_eos, scores, scores - c.missing_eos_penalty)
        return {"resp": resp, "rmask": rmask, "ids": ids, "mask": mask, "pos": pos,
                "scores": scores, "has_eos": has_eos}  # fmt: skip

    def _logprobs(self, model: Any, r: dict[str, Any], ctx: int) -> Any:
        logits = model(input_ids=r["ids"], attention_mask=r["mask"], position_ids=r["pos"]).logits
        return core.token_logprobs(logits[:, ctx - 1 : -1], r["resp"], self.cfg.temperature)

    def rollout(self, query: Any, qmask: Any) -> dict[str, Any]:
        import torch

        c, ctx = self.cfg, query.shape[1]
        r = self.respond(self.policy, query, qmask)
        with torch.no_grad():
            r["logprobs"] = self._logprobs(self.policy, r, ctx)
            ref_logprobs = self._logprobs(self.ref, r, ctx)
            r["values"] = self.value(r["ids"], r["mask"], r["pos"])[:, ctx - 1 : -1]
            m = r["rmask"].float()
            rewards, kl = core.kl_rewards(
                r["logprobs"], ref_logprobs, r["scores"], m, self.kl.value
            )
            adv, r["returns"] = core.gae(rewards, r["values"], m, c.gamma, c.lam)
            r["advantages"] = core.whiten(adv, m)
            r["values"] = r["values"] * m
            r["kl"] = kl.sum(1)
        return r

    def update(self, r: dict[str, Any], ctx: int) -> dict[str, float]:
        import torch

        c = self.cfg
        n = r["ids"].shape[0]
        stats: dict[str, list[float]] = {"pg_loss": [], "vf_loss": [], "clipfrac": [],
                                         "vf_clipfrac": [], "approx_kl": []}  # fmt: skip
        for _ in range(c.ppo_epochs):
            order = torch.randperm(n, generator=self.gen)
            for start in range(0, n, c.mini_batch_size):
                idx = order[start : start + c.mini_batch_size]
                mb = {k: v[idx] for k, v in r.items() if torch.is_tensor(v) and v.shape[0] == n}
                m = mb["rmask"].float()
                new_lp = self._logprobs(self.policy, mb, ctx)
                vpred = self.value(mb["ids"], mb["mask"], mb["pos"])[:, ctx - 1 : -1]
                pg, clipfrac, approx_kl = core.policy_loss(
                    new_lp, mb["logprobs"], mb["advantages"], m, c.cliprange
                )
                vf, vf_clip = core.value_loss(
                    vpred, mb["values"], mb["returns"], m, c.cliprange_value
                )
                loss = pg + c.vf_coef * vf
                self.opt.zero_grad()
                loss.backward()
                self.opt.step()
                for key, val in zip(stats, (pg, vf, clipfrac, vf_clip, approx_kl), strict=True):
                    stats[key].append(float(val.detach()))
        return {k: sum(v) / len(v) for k, v in stats.items()}

    def train(self, prompts: list[str], progress: Any = None) -> list[dict[str, float]]:
        import torch

        c = self.cfg
        history = []
        n_updates = max(1, c.total_episodes // c.rollout_batch_size)
        order: list[int] = []
        for step in range(1, n_updates + 1):
            if len(order) < c.rollout_batch_size:
                order += torch.randperm(len(prompts), generator=self.gen).tolist()
            batch, order = order[: c.rollout_batch_size], order[c.rollout_batch_size :]
            query, qmask = self.encode([prompts[i] for i in batch])
            r = self.rollout(query, qmask)
            row = {
                "step": step,
                "episodes": step * len(batch),
                "score": float(r["scores"].mean()),
                "kl": float(r["kl"].mean()),
                "kl_coef": self.kl.value,
                "response_length": float(r["rmask"].sum(1).float().mean()),
                "eos_rate": float(r["has_eos"].float().mean()),
                **self.update(r, query.shape[1]),
            }
            if c.adaptive_kl:
                self.kl.update(row["kl"], len(batch))
            history.append(row)
            if progress is not None:
                progress(step, n_updates, row)
        return history

    def win_rate(self, prompts: list[str]) -> dict[str, Any]:
        """Final policy vs reference on held-out prompts, judged by the reward model."""
        wins: list[float] = []
        pol_scores: list[float] = []
        ref_scores: list[float] = []
        for i in range(0, len(prompts), self.cfg.rollout_batch_size):
            query, qmask = self.encode(prompts[i : i + self.cfg.rollout_batch_size])
            sp = self.respond(self.policy, query, qmask)["scores"]
            sr = self.respond(self.ref, query, qmask)["scores"]
            pol_scores += sp.tolist()
            ref_scores += sr.tolist()
            wins += [1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(sp, sr, strict=True)]
        return {
            "win_rate": proportion(wins),
            "eval_score_policy": sum(pol_scores) / len(pol_scores),
            "eval_score_reference": sum(ref_scores) / len(ref_scores),
        }


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


@offline_for("model", "reward_model", "ref_model")
def train_ppo(
    data: Any,
    model: str,
    reward_model: str,
    out: str | Path,
    config: PPORunConfig | None = None,
    eval_data: Any = None,
    ref_model: str | None = None,
    data_ids: dict[str, Any] | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """PPO-train `model` against the frozen `reward_model`; write the run dir; return summary.

    `ref_model` defaults to the starting policy (the usual choice); when given, it is the
    frozen reference for the KL penalty and the win rate instead.
    """
    import torch

    started = time.time()
    cfg = config or PPORunConfig()
    if cfg.mini_batch_size > cfg.rollout_batch_size:
        raise TamisError(
            "mini_batch_size is larger than rollout_batch_size",
            field="mini_batch_size",
            fix="set mini_batch_size <= rollout_batch_size",
        )
    df = load_frame(data)
    check_columns(df, "ppo")
    df = drop_null_text(df, ["prompt"])
    evald = None
    if eval_data is not None:
        evald = load_frame(eval_data, what="eval data")
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
    run = prepare_run_dir(out)
    torch.manual_seed(cfg.seed)
    trainer = PPO(policy, reward, tok, cfg)
    if ref_model is not None:
        trainer.ref = _no_dropout(load_model(ref_model, "causal", cfg, tokenizer=tok)[0])
        trainer.ref.requires_grad_(False)
    t0 = time.time()
    history = trainer.train(train["prompt"].to_list(), progress)
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
    ids = data_ids or {"data": str(data) if isinstance(data, str | Path) else None}
    return write_run(
        run,
        method="ppo",
        config=cfg,
        model=model,
        data_ids={**ids, "reward_model": reward_model, "ref_model": ref_model or "initial policy"},
        metrics=metrics,
        started=started,
    )
