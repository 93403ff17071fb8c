"""Rankings -> preference pairs.

Rows (prompt, responses) with the list ordered best first, or long rows (prompt, response, rank)
with rank 1 the best (the long form is read when `columns` maps `rank`, or when the data has no
`responses` column but has a `rank` one). Ranks become scores (score = -rank) and the strategies of
ratings apply (`tamis.curate.preferences.ratings.pairs_from_scored`); several rankings of a prompt
are aggregated by mean rank. `chosen_rank`/`rejected_rank` are kept.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.curate.preferences.common import Drops, PairResult
from tamis.curate.preferences.config import PreferencePairsConfig, pairs_config, require_columns
from tamis.curate.preferences.ratings import base_rows, pairs_from_scored, parse_scores
from tamis.errors import DataError


def _long_rows(df: pl.DataFrame, cols: dict[str, str], drops: Drops) -> pl.DataFrame:
    """Long rows (prompt, response, rank) -> (prompt, response, score = -rank)."""
    roles = {k: cols[k] for k in ("prompt", "response", "rank")}
    require_columns(df, roles, "rankings")
    named: dict[str, str | None] = dict(roles)
    return parse_scores(base_rows(df, named, drops), "rank", drops, negate=True, what="rank").drop(
        "rank"
    )


def _list_rows(df: pl.DataFrame, cols: dict[str, str], drops: Drops) -> pl.DataFrame:
    """Rows (prompt, responses best first) -> one row per response with score = -position."""
    prompt_col, responses_col = cols["prompt"], cols["responses"]
    require_columns(df, {"prompt": prompt_col, "responses": responses_col}, "rankings")
    if not isinstance(df.schema[responses_col], (pl.List, pl.Array)):
        raise DataError(
            f"column '{responses_col}' must hold lists of responses ordered best first, "
            f"not {df.schema[responses_col]}",
            column=responses_col,
            fix="give a list column, or long rows (prompt, response, rank; 1 = best) with "
            "`columns: {rank: <column>}`",
        )
    base = df.with_row_index("__row").select(
        pl.col("__row").cast(pl.Int64),
        pl.col(prompt_col).cast(pl.String).alias("prompt"),
        pl.col(responses_col).cast(pl.List(pl.String)).alias("responses"),
    )
    bad = (
        pl.col("prompt").is_null()
        | pl.col("responses").is_null()
        | pl.col("responses").list.eval(pl.element().is_null()).list.any()
    )
    drops.add_frame(base.filter(bad), "missing_value")
    base = base.filter(~bad)
    short = base.filter(pl.col("responses").list.len() < 2)
    drops.add_frame(short, "fewer_than_two_responses")
    rows = (
        base.filter(pl.col("responses").list.len() >= 2)
        .with_columns(
            pl.col("responses").list.eval(pl.int_range(pl.len()) + 1).alias("rank"),
            pl.col("responses").alias("response"),
        )
        .explode("response", "rank")
        .select("__row", "prompt", "response", (-pl.col("rank").cast(pl.Float64)).alias("score"))
    )
    repeat = ~rows.select(pl.struct("__row", "response").is_first_distinct()).to_series()
    drops.add_frame(rows.filter(repeat).drop("score"), "duplicate_response")
    return rows.filter(~repeat)


def is_long_form(config: PreferencePairsConfig, columns: list[str]) -> bool:
    """Long rows (prompt, response, rank) rather than a list column of responses."""
    cols = config.roles()
    return "rank" in config.columns or (
        cols["responses"] not in columns and cols["rank"] in columns
    )


def pairs_from_rankings(
    df: pl.DataFrame, config: PreferencePairsConfig | None = None, *, seed: int = 0, **params: Any
) -> PairResult:
    """Rankings -> pairs: a list column ordered best first, or long rows with a rank (1 = best).

    `config` is a `PreferencePairsConfig` with `from: rankings`; or pass its fields as `params`
    (e.g. `columns={"rank": "rank"}` for the long form).
    """
    config = pairs_config("rankings", config, **params)
    drops = Drops()
    long_form = is_long_form(config, df.columns)
    rows = (_long_rows if long_form else _list_rows)(df, config.roles(), drops)
    return pairs_from_scored(rows, drops, config, rows_in=df.height, seed=seed)
