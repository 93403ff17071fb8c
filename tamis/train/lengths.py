"""Token lengths of training examples, tokenized exactly as TRL's trainers tokenize them.

Three uses:

* the default `max_length`: the 95th percentile of the training split's sequence lengths, capped
  by the model's maximum positions (`resolve_max_length`);
* the counts each run reports (and warns about): how many examples a trainer drops as too long
  and how many it truncates (`count`);
* evaluation with the same cut as training (the DPO metrics truncate as `DataCollatorForPreference`
  does; the reward metrics drop pairs as `RewardTrainer` does).

How each trainer treats a sequence longer than `max_length` (TRL 1.16):

* `SFTTrainer`: keeps its first `max_length` tokens; drops an example left with no token that
  carries loss (e.g. a prompt alone filling `max_length` with completion-only loss).
* `RewardTrainer`: drops a pair whose chosen or rejected sequence (prompt + response + EOS) is
  longer than `max_length`; never truncates.
* `DPOTrainer`: keeps the first `max_length` tokens of prompt + response; drops a pair whose prompt
  alone fills `max_length`.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from tamis.errors import TamisError

#: The share of training examples the default max_length keeps whole.
DEFAULT_PERCENTILE = 95.0


@dataclass
class Lengths:
    """Per example: `total` tokens of its longest sequence (prompt + response + EOS), and
    `first_loss`, the position of its first token that carries loss (an example whose
    `first_loss` is at or past the cut has nothing left to learn from)."""

    total: list[int]
    first_loss: list[int]

    def __len__(self) -> int:
        return len(self.total)


def token_ids(tok: Any, x: Any, **chat_kwargs: Any) -> list[int]:
    """Token ids as TRL's `_tokenize`: the chat template for message lists, else `tok(text=x)`."""
    if isinstance(x, list):
        out = tok.apply_chat_template(x, tokenize=True, return_dict=True, **chat_kwargs)
        return list(out["input_ids"])
    return list(tok(text=x)["input_ids"])


def common_prefix(a: list[int], b: list[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return k


def _with_eos(text: str, eos: str) -> str:
    return text if text.endswith(eos) else text + eos


def pair_ids(tok: Any, prompt: str, chosen: str, rejected: str) -> tuple[list[int], ...]:
    """(prompt, chosen, rejected) ids as `DPOTrainer` splits them: the prompt is the shared
    prefix of the tokenized prompt and both prompt + response + EOS sequences."""
    eos = tok.eos_token or ""
    p = token_ids(tok, prompt)
    pc = token_ids(tok, prompt + _with_eos(chosen, eos))
    pr = token_ids(tok, prompt + _with_eos(rejected, eos))
    k = min(common_prefix(p, pc), common_prefix(p, pr))
    return p[:k], pc[k:], pr[k:]


def _prompts(df: pl.DataFrame) -> list[Any]:
    return df["prompt"].to_list() if "prompt" in df.columns else [""] * df.height


def pair_lengths(tok: Any, df: pl.DataFrame) -> Lengths:
    """Lengths of preference pairs (text columns; render conversational pairs first): the
    longer of prompt + chosen + EOS and prompt + rejected + EOS, and the prompt length."""
    total, first = [], []
    for prompt, chosen, rejected in zip(
        _prompts(df), df["chosen"].to_list(), df["rejected"].to_list(), strict=True
    ):
        p, c, r = pair_ids(tok, prompt, chosen, rejected)
        total.append(len(p) + max(len(c), len(r)))
        first.append(len(p))
    return Lengths(total, first)


def sft_lengths(tok: Any, df: pl.DataFrame, cols: list[str], completion_only: bool) -> Lengths:
    """Lengths of SFT examples as `SFTTrainer` tokenizes them (prompt/completion strings or
    message lists, or a `messages` column with an assistant-only loss)."""
    total, first = [], []
    eos = tok.eos_token or ""
    if cols == ["messages"]:
        for conv in df["messages"].to_list():
            out = tok.apply_chat_template(
                conv, tokenize=True, return_dict=True, return_assistant_tokens_mask=completion_only
            )
            ids = list(out["input_ids"])
            mask = list(out.get("assistant_masks") or [1] * len(ids))
            total.append(len(ids))
            first.append(mask.index(1) if 1 in mask else len(ids))
        return Lengths(total, first)
    for prompt, completion in zip(df["prompt"].to_list(), df["completion"].to_list(), strict=True):
        if isinstance(prompt, list):
            p = token_ids(tok, prompt, add_generation_prompt=True)
            full = token_ids(tok, prompt + completion)
        else:
            p = token_ids(tok, prompt)
            full = token_ids(tok, prompt + _with_eos(completion, eos))
        total.append(len(full))
        first.append(common_prefix(p, full) if completion_only else 0)
    return Lengths(total, first)


def count(lengths: Lengths, max_length: int, rule: str) -> dict[str, int]:
    """How many examples a trainer uses whole, truncates, or drops at `max_length`.

    `rule` is "drop" (RewardTrainer: longer examples are dropped) or "truncate" (SFT, DPO:
    longer examples are cut, and dropped when no loss-carrying token survives the cut).
    """
    total = np.asarray(lengths.total, dtype=int)
    first = np.asarray(lengths.first_loss, dtype=int)
    if rule == "drop":
        dropped = int((total > max_length).sum())
        truncated = 0
    else:
        gone = first >= max_length
        dropped = int(gone.sum())
        truncated = int(((total > max_length) & ~gone).sum())
    return {
        "in": len(total),
        "used": len(total) - dropped,
        "dropped_too_long": dropped,
        "truncated": truncated,
    }


def model_positions(model: str, tok: Any) -> int | None:
    """The longest sequence `model` takes (its config's position limit, or the tokenizer's
    `model_max_length` when that is a real limit); None for `tiny`, which is built to fit."""
    if model == "tiny":
        return None
    limits: list[int] = []
    tok_max = getattr(tok, "model_max_length", None)
    if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
        limits.append(tok_max)
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model)
    except (OSError, ValueError):
        config = None
    if config is not None:
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        for key in ("max_position_embeddings", "n_positions", "n_ctx", "max_seq_len"):
            value = getattr(text, key, None)
            if isinstance(value, int) and value > 0:
                limits.append(value)
                break
    return min(limits) if limits else None


def resolve_max_length(
    cfg: Any, lengths: Lengths, model: str, tok: Any, what: str = "sequence"
) -> tuple[Any, dict[str, Any]]:
    """(config with max_length set, how it was chosen) — the user's value when set, else the
    95th percentile of the training split's lengths, capped by the model's maximum positions."""
    data = np.asarray(lengths.total, dtype=int)
    info: dict[str, Any] = {
        "length_max": int(data.max()) if data.size else 0,
        "length_p95": int(np.percentile(data, DEFAULT_PERCENTILE, method="higher"))
        if data.size
        else 0,
    }
    if cfg.max_length is not None:
        return cfg, {
            "max_length": int(cfg.max_length),
            "max_length_source": "set in the config",
            **info,
        }
    value = max(1, info["length_p95"])
    source = (
        f"default: the {DEFAULT_PERCENTILE:g}th percentile of the training split's {what} "
        f"lengths in tokens ({info['length_p95']}; longest {info['length_max']})"
    )
    cap = model_positions(model, tok)
    if cap is not None and value > cap:
        value = cap
        source += f", capped by the model's {cap} positions"
    return cfg.model_copy(update={"max_length": value}), {
        "max_length": value,
        "max_length_source": source,
        **info,
    }


def length_metrics(prefix: str, counts: dict[str, int]) -> dict[str, int]:
    """{prefix_in, prefix_used, prefix_dropped_too_long, prefix_truncated}."""
    return {f"{prefix}_{k}": v for k, v in counts.items()}


def warn_lengths(
    method: str, unit: str, split: str, counts: dict[str, int], info: dict[str, Any], longest: int
) -> str | None:
    """Print (stderr) and return a warning when examples were dropped or truncated."""
    dropped, truncated = counts["dropped_too_long"], counts["truncated"]
    if not dropped and not truncated:
        return None
    parts = []
    if dropped:
        parts.append(f"{dropped} dropped")
    if truncated:
        parts.append(f"{truncated} truncated")
    text = (
        f"tamis train {method}: of {counts['in']} {split} {unit}, {' and '.join(parts)} at "
        f"max_length={info['max_length']} tokens ({info['max_length_source']}); "
        f"{counts['used'] - truncated} used whole; the longest has {longest} tokens.\n"
        f"  fix: set max_length in the config (e.g. max_length: {_round_up(longest)}) to keep "
        "them whole"
    )
    print(f"warning: {text}", file=sys.stderr)
    return text


def _round_up(n: int) -> int:
    return int(2 ** math.ceil(math.log2(max(n, 1))))


#: per trainer: (the unit counted, what happens past max_length, how the error starts when
#: nothing is left in a split, what to shorten upstream)
LENGTH_RULES: dict[str, tuple[str, str, str, str]] = {
    "dpo": ("pair", "truncate", "in every {split} pair the prompt alone fills", "prompts"),
    "rm": ("pair", "drop", "every {split} pair is longer than", "texts"),
    "sft": ("example", "truncate", "no {split} example keeps a completion token within", "prompts"),
}


def check_split_lengths(
    method: str, cfg: Any, lengths: Lengths, eval_lengths: Lengths, model: str, tok: Any
) -> tuple[Any, dict[str, Any]]:
    """Choose max_length (when unset), count what each split loses under `method`'s rule
    (`LENGTH_RULES`), warn, and fail when none is left in a split. Returns the config and the
    metrics ({info}, pairs_*/examples_*, eval_pairs_*/eval_examples_*)."""
    what, rule, none_left, shorten = LENGTH_RULES[method]
    unit = f"{what}s"
    cfg, info = resolve_max_length(cfg, lengths, model, tok, what)
    counts = count(lengths, info["max_length"], rule)
    eval_counts = count(eval_lengths, info["max_length"], rule)
    for split, c, lens in (
        ("training", counts, lengths),
        ("evaluation", eval_counts, eval_lengths),
    ):
        if c["used"] == 0:
            raise TamisError(
                none_left.format(split=split) + f" max_length={cfg.max_length} "
                f"tokens ({info['max_length_source']})",
                field="max_length",
                fix=f"raise max_length in the config (the longest {split} {what} has "
                f"{max(lens.total)} tokens), or shorten the {shorten} upstream",
            )
        warn_lengths(method, unit, split, c, info, max(lens.total))
    return cfg, {
        **info,
        **length_metrics(unit, counts),
        **length_metrics(f"eval_{unit}", eval_counts),
    }
