"""The config of `preference_pairs`: which feedback, which columns, how pairs are made.

Declared once here: the builders (`pairs_from_transcripts`, `pairs_from_ratings`,
`pairs_from_rankings`, `pairs_from_votes`, `preference_pairs`) take it whole and the pipeline step
re-uses it as its params. From Python, `pairs_config("ratings", strategy="all_pairs")` builds one
(the field `from` is a Python keyword).
"""

from __future__ import annotations

from typing import Any, Literal

import polars as pl
from pydantic import Field, model_validator

from tamis.config import Config, load_config
from tamis.errors import DataError

#: HH-RLHF's turn markers
HUMAN = "\n\nHuman:"
ASSISTANT = "\n\nAssistant:"
Kind = Literal["transcripts", "ratings", "rankings", "votes"]
KINDS: tuple[str, ...] = ("transcripts", "ratings", "rankings", "votes")
#: the column roles each kind reads, with their default column names
ROLES: dict[str, dict[str, str]] = {
    "transcripts": {"chosen": "chosen", "rejected": "rejected"},
    "ratings": {
        "prompt": "prompt",
        "response": "response",
        "score": "score",
        "annotator": "annotator",
    },
    "rankings": {
        "prompt": "prompt",
        "responses": "responses",
        "response": "response",
        "rank": "rank",
    },
    "votes": {"prompt": "prompt", "a": "a", "b": "b", "winner": "winner", "annotator": "annotator"},
}
#: params that only mean something for some kinds
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "strategy": ("ratings", "rankings"),
    "margin": ("ratings", "rankings"),
    "aggregate": ("ratings",),
    "ties": ("ratings", "rankings", "votes"),
    "min_agreement": ("votes",),
    "min_votes": ("votes",),
    "below": ("votes",),
    "human_marker": ("transcripts",),
    "assistant_marker": ("transcripts",),
}


class PreferencePairsConfig(Config):
    """How `preference_pairs` turns feedback into (prompt, chosen, rejected) pairs."""

    # `from` is a Python keyword: the field is declared through the class namespace and read as
    # `config.kind`
    __annotations__["from"] = Kind
    locals()["from"] = Field(
        description="the kind of feedback: transcripts, ratings, rankings or votes"
    )
    columns: dict[str, str] = Field(
        default_factory=dict,
        description="role -> input column, where the names differ from the defaults. Roles: "
        "transcripts: chosen, rejected; ratings: prompt, response, score, annotator; rankings: "
        "prompt, responses (a list, best first) or response + rank (1 = best); votes: prompt, a, "
        "b, winner, annotator",
    )
    format: Literal["standard", "conversational"] = Field(
        "standard",
        description="standard: prompt/chosen/rejected are text; conversational: lists of "
        "{role, content} messages",
    )
    keep_both: bool = Field(
        True,
        description="also keep the other form (`*_messages` beside text, `*_text` beside messages)",
    )
    strategy: Literal["best_worst", "best_random", "all_pairs"] = Field(
        "best_worst", description="ratings/rankings: which responses of a prompt are paired"
    )
    margin: float = Field(
        0.0, ge=0.0, description="ratings/rankings: smallest score (or rank) gap kept in a pair"
    )
    ties: Literal["drop", "keep"] = Field(
        "drop", description="equal scores / tie votes: drop, or keep with `tie = true`"
    )
    aggregate: Literal["mean", "median", "majority"] = Field(
        "mean", description="ratings: how several ratings of one response are combined"
    )
    min_agreement: float = Field(
        0.5, ge=0.0, le=1.0, description="votes: smallest share of votes for the majority label"
    )
    min_votes: int = Field(1, ge=1, description="votes: fewest votes a pair needs")
    below: Literal["drop", "adjudicate"] = Field(
        "drop",
        description="votes: pairs below min_agreement (or with no majority) are dropped or also "
        "written to the `adjudicate` output",
    )
    human_marker: str = Field(HUMAN, description="transcripts: the user-turn marker")
    assistant_marker: str = Field(ASSISTANT, description="transcripts: the assistant-turn marker")

    @property
    def kind(self) -> str:
        """The `from` field: transcripts, ratings, rankings or votes."""
        return str(getattr(self, "from"))

    @model_validator(mode="after")
    def _applies(self) -> PreferencePairsConfig:
        kind = self.kind
        fields = type(self).model_fields
        for name in self.model_fields_set:
            kinds = ONLY_FOR.get(name)
            # a default value is harmless (a dumped config lists every field)
            if kinds and kind not in kinds and getattr(self, name) != fields[name].default:
                raise ValueError(f"param '{name}' does not apply to from: {kind} (only {kinds})")
        bad = [r for r in self.columns if kind in ROLES and r not in ROLES[kind]]
        if bad:
            raise ValueError(
                f"unknown column role '{bad[0]}' for from: {kind}; roles: {', '.join(ROLES[kind])}"
            )
        return self

    def roles(self) -> dict[str, str]:
        """Role -> input column: the defaults of this kind, overridden by `columns`."""
        return {**ROLES[self.kind], **self.columns}

    def annotator_column(self, columns: list[str]) -> str | None:
        """The annotator column when the data has it; an error when `columns` names one it lacks."""
        col = self.roles()["annotator"]
        if col in columns:
            return col
        if "annotator" in self.columns:
            raise DataError(
                f"no annotator column '{col}'", column=col, fix=f"columns: {', '.join(columns)}"
            )
        return None


def pairs_config(
    kind: str, config: PreferencePairsConfig | None = None, **params: Any
) -> PreferencePairsConfig:
    """`config` (checked to be of `kind`), or a config of `kind` built from `params`."""
    if config is None:
        return load_config(
            PreferencePairsConfig, {"from": kind, **params}, prefix=f"pairs_from_{kind}"
        )
    if params:
        raise TypeError(f"pass either a config or params, not both ({', '.join(params)})")
    if config.kind != kind:
        raise DataError(
            f"a config with from: {config.kind} was given to pairs_from_{kind}",
            field="from",
            fix=f"use preference_pairs(df, config), or pairs_from_{config.kind}",
        )
    return config


def require_columns(df: pl.DataFrame, roles: dict[str, str], kind: str) -> None:
    """Raise a DataError naming the first missing column, the present ones and the role to map."""
    for role, col in roles.items():
        if col not in df.columns:
            raise DataError(
                f"preference_pairs (from: {kind}) needs a column '{col}' (role `{role}`), "
                f"but the input has: {', '.join(df.columns) or '(no columns)'}",
                column=col,
                fix=f"rename the column, or map it: `columns: {{{role}: <column>}}` in the "
                "pipeline step (the same `columns=` in Python)",
            )
