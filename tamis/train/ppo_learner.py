"""The PPO learner of `tamis train ppo`: the four models, sampling, rollouts and updates.

`PPO` holds the policy (trained), a frozen reference, a frozen reward model and a value model
initialised from the reward model (trained), and runs rollouts (`rollout`) and clipped updates
(`update`) with the tensor maths of `ppo_core`; `win_rate` judges the final policy against the
reference. `tamis.train.ppo` builds it from a config and data and writes the run (see its module
docstring for the implementation details followed).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from tamis.errors import TamisError
from tamis.train import ppo_core as core
from tamis.train.metrics import proportion
from tamis.train.models import lora_config

if TYPE_CHECKING:
    from tamis.train.ppo import PPORunConfig


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


def no_dropout(model: Any) -> Any:
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
        self.ref = no_dropout(copy.deepcopy(policy)).requires_grad_(False)
        if cfg.lora:  # LoRA adapters on the policy; the reference stays the full base model
            from peft import get_peft_model

            policy = get_peft_model(policy, lora_config(cfg, "CAUSAL_LM"))
        self.policy = no_dropout(policy)
        self.reward = _Scorer(no_dropout(reward).requires_grad_(False))
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
