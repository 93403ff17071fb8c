"""The columns (and dtypes) of what the preference builders and `tone_pairs` return."""

from __future__ import annotations

import polars as pl

from tamis.curate.preferences.common import MESSAGES
from tamis.curate.preferences.config import PreferencePairsConfig
from tamis.curate.preferences.tone import TonePairsConfig

#: each kind's metadata columns after prompt/chosen/rejected (and their other form)
_META: dict[str, dict[str, pl.DataType]] = {
    "transcripts": {"n_turns": pl.Int64(), "source_row": pl.Int64()},
    "ratings": {
        "chosen_score": pl.Float64(),
        "rejected_score": pl.Float64(),
        "score_gap": pl.Float64(),
        "tie": pl.Boolean(),
    },
    "rankings": {
        "score_gap": pl.Float64(),
        "tie": pl.Boolean(),
        "chosen_rank": pl.Float64(),
        "rejected_rank": pl.Float64(),
    },
    "votes": {
        "agreement": pl.Float64(),
        "n_votes": pl.Int64(),
        "votes_chosen": pl.Int64(),
        "votes_rejected": pl.Int64(),
        "votes_tie": pl.Int64(),
        "tie": pl.Boolean(),
    },
}
_SIDES = ("prompt", "chosen", "rejected")


def trl_columns(format: str, keep_both: bool) -> dict[str, pl.DataType]:
    """prompt/chosen/rejected as text or messages, then (`keep_both`) the other form."""
    text: dict[str, pl.DataType] = dict.fromkeys(_SIDES, pl.String())
    msgs: dict[str, pl.DataType] = dict.fromkeys(_SIDES, MESSAGES)
    if format == "standard":
        other = {f"{s}_messages": MESSAGES for s in _SIDES}
        return {**text, **(other if keep_both else {})}
    other_text: dict[str, pl.DataType] = {f"{s}_text": pl.String() for s in _SIDES}
    return {**msgs, **(other_text if keep_both else {})}


def pairs_schema(config: PreferencePairsConfig, source: pl.Schema) -> pl.Schema:
    """The schema of `preference_pairs(df, config).pairs` for an input of schema `source`."""
    meta = dict(_META[config.kind])
    if config.kind == "ratings" and config.annotator_column(list(source.names())) is not None:
        meta.update(agreement=pl.Float64(), n_annotators=pl.UInt32())
    if config.kind != "transcripts":
        meta["n_turns"] = pl.Int64()
    return pl.Schema({**trl_columns(config.format, config.keep_both), **meta})


def tone_schema(config: TonePairsConfig) -> pl.Schema:
    """The schema of `tone_pairs(config)`."""
    side = pl.String() if config.format == "standard" else MESSAGES
    return pl.Schema(
        {
            **dict.fromkeys(_SIDES, side),
            "synthetic": pl.Boolean(),
            "label_flipped": pl.Boolean(),
            "topic": pl.String(),
        }
    )
