"""HH-RLHF style transcripts -> preference pairs.

Each input row holds two whole conversations, `chosen` and `rejected`, written as
`"\\n\\nHuman: ...\\n\\nAssistant: ...\\n\\nHuman: ...\\n\\nAssistant: ..."`. The shared prompt is
every character up to and including the final `\\n\\nAssistant:` marker, which must be identical in
both; the responses are what follows. So `prompt + chosen` gives back the original chosen string
exactly (and the same for rejected): nothing is stripped from the standard text form. The
conversational form splits the prompt at the markers into {role, content} messages (contents
stripped), user for Human and assistant for Assistant, every earlier turn in order.

Rows that cannot be split are dropped with a reason, never guessed:
`missing_value` (a null), `no_markers` (no Human/Assistant marker), `text_before_first_turn`,
`no_final_assistant` (the conversation ends on a Human turn), `no_human_turn`, `prompt_mismatch`
(the two conversations differ before the final Assistant turn).

Conversations given as lists of {role, content} messages (TRL's "implicit prompt" conversational
form) are split the same way: the prompt is every message before the final assistant message, which
must be the same in both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from tamis.curate.preferences.common import MESSAGES, Drops, PairResult, finalize, nothing_left
from tamis.curate.preferences.config import (
    ASSISTANT,
    HUMAN,
    PreferencePairsConfig,
    pairs_config,
    require_columns,
)
from tamis.curate.preferences.stats import build_report
from tamis.errors import DataError


@dataclass(frozen=True)
class ParsedTranscript:
    """One conversation split at its final Assistant marker."""

    prompt: str  # every character up to and including the final assistant marker
    response: str  # the rest: prompt + response == the original string
    messages: list[dict[str, str]]  # the prompt's turns as {role, content}, in order


def _pattern(human: str, assistant: str) -> re.Pattern[str]:
    return re.compile(f"({re.escape(human)}|{re.escape(assistant)})")


def parse_transcript(
    text: str | None,
    human: str = HUMAN,
    assistant: str = ASSISTANT,
    *,
    _pattern_cache: dict[tuple[str, str], re.Pattern[str]] = {},  # noqa: B006
) -> ParsedTranscript | str:
    """Split one transcript; returns the parse or the reason (a string) it cannot be split."""
    if text is None:
        return "missing_value"
    key = (human, assistant)
    pattern = _pattern_cache.get(key)
    if pattern is None:
        pattern = _pattern_cache[key] = _pattern(human, assistant)
    marks = list(pattern.finditer(text))
    if not marks:
        return "no_markers"
    if text[: marks[0].start()].strip():
        return "text_before_first_turn"
    if marks[-1].group(0) != assistant:
        return "no_final_assistant"
    messages = []
    for i, m in enumerate(marks[:-1]):
        role = "user" if m.group(0) == human else "assistant"
        messages.append({"role": role, "content": text[m.end() : marks[i + 1].start()].strip()})
    if not any(msg["role"] == "user" for msg in messages):
        return "no_human_turn"
    cut = marks[-1].end()
    return ParsedTranscript(prompt=text[:cut], response=text[cut:], messages=messages)


def split_pair(
    chosen: str | None, rejected: str | None, human: str = HUMAN, assistant: str = ASSISTANT
) -> tuple[ParsedTranscript, ParsedTranscript] | str:
    """Parse both conversations of a pair; the reason string if they do not form a valid pair."""
    a = parse_transcript(chosen, human, assistant)
    if isinstance(a, str):
        return a
    b = parse_transcript(rejected, human, assistant)
    if isinstance(b, str):
        return b
    if a.prompt != b.prompt:
        return "prompt_mismatch"
    return a, b


def split_message_pair(
    chosen: list[dict[str, str]] | None,
    rejected: list[dict[str, str]] | None,
    human: str = HUMAN,
    assistant: str = ASSISTANT,
) -> tuple[ParsedTranscript, ParsedTranscript] | str:
    """The same split for conversations given as {role, content} lists (TRL's implicit-prompt form).

    The text form is rendered with the markers: `prompt` ends with the assistant marker and the
    responses start with a space, as in HH-RLHF.
    """
    if not chosen or not rejected:
        return "missing_value"
    for msgs in (chosen, rejected):
        if any(m is None or m.get("content") is None or m.get("role") is None for m in msgs):
            return "missing_value"
    if chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        return "no_final_assistant"
    prompt = [{"role": m["role"], "content": m["content"]} for m in chosen[:-1]]
    other = [{"role": m["role"], "content": m["content"]} for m in rejected[:-1]]
    if prompt != other:
        return "prompt_mismatch"
    if not any(m["role"] == "user" for m in prompt):
        return "no_human_turn"
    text = "".join(
        f"{human if m['role'] == 'user' else assistant} {m['content']}"
        for m in prompt
        if m["role"] in ("user", "assistant")
    )
    text += assistant
    return (
        ParsedTranscript(text, " " + chosen[-1]["content"], prompt),
        ParsedTranscript(text, " " + rejected[-1]["content"], prompt),
    )


def pairs_from_transcripts(
    df: pl.DataFrame,
    config: PreferencePairsConfig | None = None,
    *,
    progress: Callable[..., None] | None = None,
    **params: Any,
) -> PairResult:
    """HH-RLHF style rows -> pairs (`prompt`, `chosen`, `rejected`) plus `n_turns`, `source_row`.

    `config` is a `PreferencePairsConfig` with `from: transcripts`; or pass its fields as `params`.
    Raises DataError on a missing column or when no row can be split (with counts per reason).
    """
    config = pairs_config("transcripts", config, **params)
    cols = config.roles()
    chosen_col, rejected_col = cols["chosen"], cols["rejected"]
    require_columns(df, cols, "transcripts")
    drops = Drops()
    rows: list[dict[str, Any]] = []
    dtypes = [df.schema[chosen_col], df.schema[rejected_col]]
    as_messages = all(isinstance(t, pl.List) and isinstance(t.inner, pl.Struct) for t in dtypes)
    if not as_messages and any(isinstance(t, pl.List | pl.Struct) for t in dtypes):
        raise DataError(
            f"columns '{chosen_col}' and '{rejected_col}' must both be text or both be lists of "
            f"{{role, content}} messages, not {dtypes[0]} and {dtypes[1]}",
            column=chosen_col,
            fix="give whole conversations as text (HH-RLHF style) or as message lists",
        )
    cast = (lambda s: s) if as_messages else (lambda s: s.cast(pl.String))
    chosen_s = cast(df.get_column(chosen_col)).to_list()
    rejected_s = cast(df.get_column(rejected_col)).to_list()
    split = split_message_pair if as_messages else split_pair
    for i, (c, r) in enumerate(zip(chosen_s, rejected_s, strict=True)):
        if progress is not None and i % 5000 == 0:
            progress("splitting transcripts", completed=i, total=df.height)
        parsed = split(c, r, config.human_marker, config.assistant_marker)
        if isinstance(parsed, str):
            drops.add(parsed, "row", source_row=i, detail={"chosen": c, "rejected": r})
            continue
        a, b = parsed
        rows.append(
            {
                "prompt": a.prompt,
                "chosen": a.response,
                "rejected": b.response,
                "prompt_messages": a.messages,
                "n_turns": sum(m["role"] == "user" for m in a.messages),
                "source_row": i,
            }
        )
    schema: dict[str, Any] = {
        "prompt": pl.String,
        "chosen": pl.String,
        "rejected": pl.String,
        "prompt_messages": MESSAGES,
        "n_turns": pl.Int64,
        "source_row": pl.Int64,
    }
    canon = pl.DataFrame(rows, schema=schema)
    report = build_report("transcripts", df.height, canon, drops)
    if canon.height == 0:
        raise nothing_left("transcripts", report)
    return PairResult(finalize(canon, config.format, config.keep_both), report, drops.frame())
