"""What an export sends: the items (the best ranked with `--top`), the task type and its shown
columns, unique item ids, and the gold items mixed in."""

from __future__ import annotations

import math
import warnings

import numpy as np
import polars as pl

from tamis.curate.annotation.columns import require_columns
from tamis.curate.annotation.tasks import TaskSpec
from tamis.errors import TamisError
from tamis.pipelines.annotate.record import OWN_COLUMNS
from tamis.pipelines.data import Data


def item_column(frame: pl.DataFrame, id_col: str | None, where: str) -> str:
    if id_col is not None:
        check_columns(frame, [id_col], where, "--id")
        return id_col
    for name in ("item", "id", "item_id"):
        if name in frame.columns:
            return name
    raise TamisError(
        f"{where} has no item id column (item, id or item_id)",
        field="--id",
        fix="pass --id COLUMN naming the column that identifies each item",
    )


def check_columns(frame: pl.DataFrame, cols: list[str], where: str, flag: str) -> None:
    require_columns(
        frame, {flag.lstrip("-"): c for c in cols}, what=where, field=flag,
        fix=f"columns: {', '.join(frame.columns[:20])}",
    )  # fmt: skip


def default_fields(frame: pl.DataFrame, task: str) -> list[str]:
    if task == "preference":
        for pair in (("chosen", "rejected"), ("response_a", "response_b"), ("a", "b")):
            if all(c in frame.columns for c in pair):
                return list(pair)
        raise TamisError(
            "cannot tell which two columns hold the responses",
            field="--fields",
            fix="pass --fields RESPONSE_A,RESPONSE_B",
        )
    for name in ("text", "prompt", "content"):
        if name in frame.columns:
            return [name]
    raise TamisError(
        "cannot tell which columns to show annotators",
        field="--fields",
        fix="pass --fields COL1,COL2",
    )


def task_spec(
    frame: pl.DataFrame, where: str, *, task: str, fields: list[str] | None, prompt: str | None,
    labels: list[str] | None, label_col: str | None, scale: int,
) -> TaskSpec:  # fmt: skip
    """The task type with its shown columns and answers, the columns checked in `frame`."""
    fields = fields or default_fields(frame, task)
    check_columns(frame, fields, where, "--fields")
    if prompt is None and task == "preference" and "prompt" in frame.columns:
        prompt = "prompt"
    if prompt is not None:
        check_columns(frame, [prompt], where, "--prompt")
    if task == "classification" and not labels:
        col = label_col or ("label" if "label" in frame.columns else None)
        if col is None:
            raise TamisError(
                "no labels to choose from",
                field="--labels",
                fix="pass --labels a,b,... or --label-col COLUMN",
            )
        check_columns(frame, [col], where, "--label-col")
        labels = sorted(str(v) for v in frame.get_column(col).drop_nulls().unique().to_list())
    return TaskSpec(task=task, fields=fields, labels=list(labels or []), scale=scale, prompt=prompt)


def check_ids(frame: pl.DataFrame, item: str) -> None:
    if frame.get_column(item).null_count():
        raise TamisError(f"item id column '{item}' has nulls", column=item, fix="fill or drop them")
    dupes = frame.height - frame.get_column(item).n_unique()
    if dupes:
        raise TamisError(
            f"item id column '{item}' has {dupes} duplicate value(s)",
            column=item,
            fix="ids must be unique: dedup first or pass --id naming a unique column",
        )


def items_table(
    frame: pl.DataFrame, item: str, used: set[str | None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The frame with the items' own columns named like the record's kept as `orig_<name>`, and
    the tasks so far (`item` as text, not gold)."""
    clash = {c: f"orig_{c}" for c in frame.columns if c in OWN_COLUMNS and c not in used}
    if clash:
        frame = frame.rename(clash)
    items = frame.with_columns(
        pl.col(item).cast(pl.String).alias("item"),
        pl.lit(False).alias("is_gold"),
        pl.lit(None, dtype=pl.String).alias("gold_label"),
    )
    return frame, items


def gold_items(
    gold: Data, gold_ref: str, items: pl.DataFrame, *, item: str, frame: pl.DataFrame,
    spec: TaskSpec, gold_label: str, gold_share: float, suggest_col: str | None, seed: int,
) -> pl.DataFrame:  # fmt: skip
    """The gold items drawn (seeded) for `gold_share` of the tasks, not among the items."""
    gframe = gold.frame
    where = f"gold version {gold_ref}"
    gitem = item_column(gframe, item if item in gframe.columns else None, f"gold {gold_ref}")
    check_columns(gframe, [gold_label], where, "--gold-label")
    check_columns(gframe, spec.fields + ([spec.prompt] if spec.prompt else []), where, "--gold")
    if suggest_col is not None and suggest_col not in gframe.columns:
        raise TamisError(
            f"with --suggest the gold items need a suggestion too: gold version {gold_ref} has "
            f"no column '{suggest_col}', so its items would be the ones without one",
            field="--suggest",
            column=suggest_col,
            fix="add the model's suggestions to the gold version (e.g. run the same "
            "label_issues step on it) or export without --suggest",
        )
    pool = gframe.with_columns(pl.col(gitem).cast(pl.String).alias("item")).filter(
        pl.col(gold_label).is_not_null() & ~pl.col("item").is_in(items.get_column("item").to_list())
    )
    pool = pool.unique(subset="item", keep="first").sort("item")
    want = math.ceil(gold_share * frame.height / (1.0 - gold_share)) if gold_share else 0
    n_gold = min(want, pool.height)
    if want and pool.height < want:
        warnings.warn(
            f"gold {gold_ref} has {pool.height} usable item(s), {want} wanted: all are used",
            stacklevel=3,
        )
    pick = np.random.default_rng([seed, 1]).choice(pool.height, size=n_gold, replace=False)
    chosen = pool[np.sort(pick).tolist()] if n_gold else pool.head(0)
    chosen = chosen.with_columns(
        pl.lit(True).alias("is_gold"), pl.col(gold_label).cast(pl.String).alias("gold_label")
    )
    if gitem != "item" and gitem not in frame.columns:
        chosen = chosen.drop(gitem)
    return chosen


def select_items(data: Data, ref: str, id_col: str | None, top: int | None, rank_col: str) -> tuple[
    pl.DataFrame, str
]:  # fmt: skip
    """The items to send (the `top` best ranked with `top`) and their id column."""
    frame = data.frame
    item = item_column(frame, id_col, f"version {ref}")
    if top is not None:
        if rank_col not in frame.columns:
            raise TamisError(
                f"--top needs a ranking column '{rank_col}' in {ref}",
                field="--top",
                fix="export the output of an `active_learning` step, or pass --rank-col",
            )
        frame = frame.sort([rank_col, item], nulls_last=True).head(top)
    return frame, item
