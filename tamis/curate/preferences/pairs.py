"""`preference_pairs`: one entry point for every kind of feedback (the config's `from`)."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from tamis.curate.preferences.common import PairResult
from tamis.curate.preferences.config import PreferencePairsConfig
from tamis.curate.preferences.rankings import pairs_from_rankings
from tamis.curate.preferences.ratings import pairs_from_ratings
from tamis.curate.preferences.transcripts import pairs_from_transcripts
from tamis.curate.preferences.votes import pairs_from_votes


def preference_pairs(
    df: pl.DataFrame,
    config: PreferencePairsConfig,
    *,
    seed: int = 0,
    progress: Callable[..., None] | None = None,
) -> PairResult:
    """Pairs from transcripts, ratings, rankings or votes, as `config.kind` says."""
    kind = config.kind
    if kind == "transcripts":
        return pairs_from_transcripts(df, config, progress=progress)
    if kind == "ratings":
        return pairs_from_ratings(df, config, seed=seed)
    if kind == "rankings":
        return pairs_from_rankings(df, config, seed=seed)
    return pairs_from_votes(df, config, seed=seed)
