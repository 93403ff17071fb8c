"""Shared pieces of the preference builders: the result type, drop bookkeeping and TRL formats.

Every builder produces a *canonical* frame first: `prompt` (standard text), `chosen`, `rejected`
(text), `prompt_messages` (a list of {role, content}), plus metadata columns. `finalize` turns it
into what TRL reads: `format="standard"` keeps text in `prompt/chosen/rejected` (and the messages in
`*_messages`), `format="conversational"` puts message lists there (and the text in `*_text`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from tamis.errors import DataError

MESSAGE = pl.Struct({"role": pl.String, "content": pl.String})
MESSAGES = pl.List(MESSAGE)
#: the schema of the `dropped` output: one row per dropped input row, candidate pair or prompt
DROPPED_SCHEMA = {
    "reason": pl.String,
    "unit": pl.String,
    "source_row": pl.Int64,
    "prompt": pl.String,
    "detail": pl.String,
}


@dataclass
class PairResult:
    """Pairs ready for TRL, the report, what was dropped and why, and pairs left for adjudication."""

    pairs: pl.DataFrame
    report: dict[str, Any]
    dropped: pl.DataFrame
    adjudicate: pl.DataFrame | None = None


@dataclass
class Drops:
    """Collects dropped items with a reason; counts per unit (row, pair, prompt) for the report."""

    records: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self,
        reason: str,
        unit: str,
        *,
        source_row: int | None = None,
        prompt: Any = None,
        detail: Any = None,
    ) -> None:
        if prompt is not None and not isinstance(prompt, str):
            prompt = json.dumps(prompt, default=str)
        if detail is not None and not isinstance(detail, str):
            detail = json.dumps(detail, default=str)
        self.records.append(
            {
                "reason": reason,
                "unit": unit,
                "source_row": source_row,
                "prompt": prompt if prompt is None else prompt[:2000],
                "detail": detail if detail is None else detail[:2000],
            }
        )

    def add_frame(self, frame: pl.DataFrame, reason: str, unit: str = "row") -> None:
        """Record every row of `frame` (which must have `__row` and may have `prompt`)."""
        for row in frame.to_dicts():
            source_row = row.pop("__row", None)
            self.add(reason, unit, source_row=source_row, prompt=row.get("prompt"), detail=row)

    def counts(self, unit: str) -> dict[str, int]:
        return dict(sorted(Counter(r["reason"] for r in self.records if r["unit"] == unit).items()))

    def frame(self) -> pl.DataFrame:
        return pl.DataFrame(self.records, schema=DROPPED_SCHEMA)


def nothing_left(kind: str, report: dict[str, Any]) -> DataError:
    """The error raised when no valid pair is left: it carries the per-reason counts."""
    reasons = {
        **report.get("dropped_rows", {}),
        **report.get("dropped_pairs", {}),
        **report.get("dropped_prompts", {}),
    }
    top = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1]))
    return DataError(
        f"no valid preference pair is left from {report.get('rows_in', 0)} input rows "
        f"(from: {kind}); dropped by reason: {top or 'none (the input is empty)'}",
        fix="check the column params and the input format; the `dropped` output lists every "
        "dropped item with its reason",
        details={"report": report},
    )


def user_messages(prompt: pl.Expr) -> pl.Expr:
    """A one-turn conversation from a plain-text prompt."""
    return pl.concat_list(pl.struct(role=pl.lit("user"), content=prompt))


def single_turn(pairs: pl.DataFrame) -> pl.DataFrame:
    """The canonical frame of pairs on one-turn text prompts: their messages and `n_turns = 1`."""
    return pairs.with_columns(
        user_messages(pl.col("prompt")).alias("prompt_messages"),
        pl.lit(1, dtype=pl.Int64).alias("n_turns"),
    )


def assistant_message(text: pl.Expr) -> pl.Expr:
    return pl.concat_list(pl.struct(role=pl.lit("assistant"), content=text.str.strip_chars()))


def messages_text(col: str) -> pl.Expr:
    """The text view of a column that may hold text or message lists (contents joined by blank lines)."""
    return pl.col(col).list.eval(pl.element().struct.field("content")).list.join("\n\n")


def text_view(df: pl.DataFrame, col: str) -> pl.Series:
    """`col` as text whatever the format (message lists become their joined contents)."""
    dtype = df.schema[col]
    if dtype == pl.String:
        return df.get_column(col)
    if isinstance(dtype, pl.List) and isinstance(dtype.inner, pl.Struct):
        return df.select(messages_text(col).alias(col)).get_column(col)
    return df.get_column(col).cast(pl.String)


def is_conversational(df: pl.DataFrame) -> bool:
    return "prompt" in df.columns and isinstance(df.schema["prompt"], pl.List)


def n_user_turns(df: pl.DataFrame) -> pl.Series:
    """Turns per prompt: the number of user messages (1 for a plain-text prompt)."""
    if "n_turns" in df.columns:
        return df.get_column("n_turns")
    if is_conversational(df):
        return df.select(
            pl.col("prompt")
            .list.eval(pl.element().struct.field("role") == "user")
            .list.sum()
            .alias("n")
        ).get_column("n")
    return pl.Series("n", [1] * df.height, dtype=pl.Int64)


def finalize(canon: pl.DataFrame, format: str, keep_both: bool = True) -> pl.DataFrame:
    """Canonical frame -> TRL columns first (`prompt`, `chosen`, `rejected`), metadata after."""
    meta = [
        c for c in canon.columns if c not in ("prompt", "chosen", "rejected", "prompt_messages")
    ]
    msgs = [
        pl.col("prompt_messages").alias("prompt_messages"),
        assistant_message(pl.col("chosen")).alias("chosen_messages"),
        assistant_message(pl.col("rejected")).alias("rejected_messages"),
    ]
    if format == "standard":
        cols = [pl.col("prompt"), pl.col("chosen"), pl.col("rejected")]
        if keep_both:
            cols += msgs
    else:
        cols = [
            m.alias(name) for m, name in zip(msgs, ("prompt", "chosen", "rejected"), strict=True)
        ]
        if keep_both:
            cols += [
                pl.col("prompt").alias("prompt_text"),
                pl.col("chosen").alias("chosen_text"),
                pl.col("rejected").alias("rejected_text"),
            ]
    return canon.select(*cols, *[pl.col(c) for c in meta])


def to_sft(pairs: pl.DataFrame) -> pl.DataFrame:
    """SFT data from preference pairs: `prompt` and `completion` (the chosen response).

    Ties (a `tie` column that is true) are left out: neither response was preferred.
    """
    df = pairs.filter(~pl.col("tie")) if "tie" in pairs.columns else pairs
    return df.select(pl.col("prompt"), pl.col("chosen").alias("completion"))


def to_prompts(pairs: pl.DataFrame) -> pl.DataFrame:
    """Prompt-only data for RL (PPO/GRPO/RLOO): each distinct prompt once, with its pair count."""
    key = text_view(pairs, "prompt").alias("__key")
    return (
        pairs.select(pl.col("prompt"), key)
        .group_by("__key", maintain_order=True)
        .agg(pl.col("prompt").first(), pl.len().alias("n_pairs"))
        .drop("__key")
    )
