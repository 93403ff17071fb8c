"""`tamis annotate export`: the tool's files for a store version's items, and the export record.

The items come from a store ref (or a data file, through `tamis.pipelines.data.read_data`); gold
items (optional, another ref or file) are mixed in at `gold_share`, every task gets an opaque id
and a seeded position, a preference pair a seeded order. The record goes into the store first,
then the files are written: an import can always be checked.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.annotation import argilla as rg_format
from tamis.curate.annotation import label_studio as ls_format
from tamis.curate.annotation.columns import require_columns
from tamis.curate.annotation.tasks import TaskSpec, task_id
from tamis.errors import TamisError
from tamis.pipelines.annotate.record import (
    OWN_COLUMNS,
    check_new_dir,
    check_tool,
    record_export,
    write_tree_atomic,
)
from tamis.pipelines.data import Data, read_data
from tamis.pipelines.hashing import hash_json
from tamis.pipelines.store import Store, now


def _item_column(frame: pl.DataFrame, id_col: str | None, where: str) -> str:
    if id_col is not None:
        _check_columns(frame, [id_col], where, "--id")
        return id_col
    for name in ("item", "id", "item_id"):
        if name in frame.columns:
            return name
    raise TamisError(
        f"{where} has no item id column (item, id or item_id)",
        field="--id",
        fix="pass --id COLUMN naming the column that identifies each item",
    )


def _check_columns(frame: pl.DataFrame, cols: list[str], where: str, flag: str) -> None:
    require_columns(
        frame, {flag.lstrip("-"): c for c in cols}, what=where, field=flag,
        fix=f"columns: {', '.join(frame.columns[:20])}",
    )  # fmt: skip


def _default_fields(frame: pl.DataFrame, task: str) -> list[str]:
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


def _source(data: Data) -> str:
    """The id the record keeps for what was read: the version id, or the file's digest."""
    return data.version or f"file:{data.sha256()}"


def _task_spec(
    frame: pl.DataFrame, where: str, *, task: str, fields: list[str] | None, prompt: str | None,
    labels: list[str] | None, label_col: str | None, scale: int,
) -> TaskSpec:  # fmt: skip
    """The task type with its shown columns and answers, the columns checked in `frame`."""
    fields = fields or _default_fields(frame, task)
    _check_columns(frame, fields, where, "--fields")
    if prompt is None and task == "preference" and "prompt" in frame.columns:
        prompt = "prompt"
    if prompt is not None:
        _check_columns(frame, [prompt], where, "--prompt")
    if task == "classification" and not labels:
        col = label_col or ("label" if "label" in frame.columns else None)
        if col is None:
            raise TamisError(
                "no labels to choose from",
                field="--labels",
                fix="pass --labels a,b,... or --label-col COLUMN",
            )
        _check_columns(frame, [col], where, "--label-col")
        labels = sorted(str(v) for v in frame.get_column(col).drop_nulls().unique().to_list())
    return TaskSpec(task=task, fields=fields, labels=list(labels or []), scale=scale, prompt=prompt)


def _check_ids(frame: pl.DataFrame, item: str) -> None:
    if frame.get_column(item).null_count():
        raise TamisError(f"item id column '{item}' has nulls", column=item, fix="fill or drop them")
    dupes = frame.height - frame.get_column(item).n_unique()
    if dupes:
        raise TamisError(
            f"item id column '{item}' has {dupes} duplicate value(s)",
            column=item,
            fix="ids must be unique: dedup first or pass --id naming a unique column",
        )


def _items(
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


def _gold_items(
    gold: Data, gold_ref: str, items: pl.DataFrame, *, item: str, frame: pl.DataFrame,
    spec: TaskSpec, gold_label: str, gold_share: float, suggest_col: str | None, seed: int,
) -> pl.DataFrame:  # fmt: skip
    """The gold items drawn (seeded) for `gold_share` of the tasks, not among the items."""
    gframe = gold.frame
    where = f"gold version {gold_ref}"
    gitem = _item_column(gframe, item if item in gframe.columns else None, f"gold {gold_ref}")
    _check_columns(gframe, [gold_label], where, "--gold-label")
    _check_columns(gframe, spec.fields + ([spec.prompt] if spec.prompt else []), where, "--gold")
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


def _tasks(
    items: pl.DataFrame, salt: str, spec: TaskSpec, *, seed: int, suggest_col: str | None
) -> pl.DataFrame:
    """Opaque task ids, a seeded position, the shown order of a pair, the suggestion."""
    items = items.with_columns(
        pl.col("item")
        .map_elements(lambda v: task_id(v, salt), return_dtype=pl.String)
        .alias("task_id")
    ).sort("task_id")
    rng = np.random.default_rng([seed, 2])
    preference = spec.task == "preference"
    swapped = rng.random(items.height) < 0.5 if preference else np.zeros(items.height, bool)
    items = items.with_columns(
        pl.Series("position", rng.permutation(items.height), dtype=pl.Int64),
        pl.Series("swapped", swapped, dtype=pl.Boolean),
    ).sort("position")
    suggestion = (
        pl.col(suggest_col).cast(pl.String) if suggest_col else pl.lit(None, dtype=pl.String)
    )
    items = items.with_columns(suggestion.alias("suggestion"))
    if preference:
        a, b = spec.fields
        items = items.with_columns(
            pl.when(pl.col("swapped")).then(pl.col(b)).otherwise(pl.col(a)).alias("_shown_a"),
            pl.when(pl.col("swapped")).then(pl.col(a)).otherwise(pl.col(b)).alias("_shown_b"),
        )
    return items


def _suggestion(
    spec: TaskSpec, row: dict[str, Any], suggest_score: str | None
) -> tuple[str, float | None] | None:
    if row.get("suggestion") is None:
        return None
    value = str(row["suggestion"])
    if spec.task == "preference":
        # the suggestion names the better original column: shown as a or b
        first = spec.fields[1] if row["swapped"] else spec.fields[0]
        value = "a" if value == first else "b"
    score = row.get(suggest_score) if suggest_score else None
    return value, (None if score is None else float(score))


def tool_files(
    spec: TaskSpec, items: pl.DataFrame, tool: str, *, overlap: int, title: str,
    suggest_score: str | None,
) -> dict[str, str]:  # fmt: skip
    """The files the tool loads: Label Studio tasks + config + project, or an Argilla dataset."""
    rows = items.to_dicts()
    if tool == "label-studio":
        tasks = [
            ls_format.build_task(
                spec, r["task_id"], r, suggestion=_suggestion(spec, r, suggest_score)
            )
            for r in rows
        ]
        return {
            "tasks.json": json.dumps(tasks, indent=1, default=str),
            "label_config.xml": ls_format.labeling_config(spec),
            "project.json": json.dumps(
                ls_format.project_settings(spec, title=title, overlap=overlap), indent=1
            ),
        }
    records = [
        rg_format.build_record(
            spec, r["task_id"], r, suggestion=_suggestion(spec, r, suggest_score)
        )
        for r in rows
    ]
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in title)[:60]
    return {
        rg_format.RECORDS: json.dumps(records, indent=1, default=str),
        rg_format.SETTINGS: json.dumps(rg_format.settings(spec, overlap=overlap), indent=1),
        rg_format.DATASET: json.dumps(rg_format.dataset_model(name, overlap=overlap), indent=1),
    }


def _select(data: Data, ref: str, id_col: str | None, top: int | None, rank_col: str) -> tuple[
    pl.DataFrame, str
]:  # fmt: skip
    """The items to send (the `top` best ranked with `top`) and their id column."""
    frame = data.frame
    item = _item_column(frame, id_col, f"version {ref}")
    if top is not None:
        if rank_col not in frame.columns:
            raise TamisError(
                f"--top needs a ranking column '{rank_col}' in {ref}",
                field="--top",
                fix="export the output of an `active_learning` step, or pass --rank-col",
            )
        frame = frame.sort([rank_col, item], nulls_last=True).head(top)
    return frame, item


def export_annotations(
    store: Store,
    ref: str,
    *,
    tool: str,
    task: str,
    to: Path,
    labels: list[str] | None = None,
    label_col: str | None = None,
    fields: list[str] | None = None,
    prompt: str | None = None,
    id_col: str | None = None,
    scale: int = 5,
    gold: str | None = None,
    gold_label: str = "label",
    gold_share: float = 0.05,
    overlap: int = 1,
    suggest: bool = False,
    suggest_col: str = "suggested_label",
    suggest_score: str | None = None,
    top: int | None = None,
    rank_col: str = "active_learning_rank",
    seed: int = 0,
    overwrite: bool = False,
    title: str | None = None,
) -> dict[str, Any]:
    """Write the tool's files into `to` and record the export in the store; returns a summary
    with the export `id`. `ref` and `gold` are store refs (or data files)."""
    check_tool(tool, "--tool")
    if overlap < 1:
        raise TamisError("overlap must be at least 1", field="--overlap")
    if not 0.0 <= gold_share < 1.0:
        raise TamisError("gold share must be in [0, 1)", field="--gold-share", fix="e.g. 0.05")
    to = Path(to)
    check_new_dir(to, overwrite=overwrite)  # first: nothing is read or recorded in vain
    data = read_data(ref, store, what="items")
    src_id = _source(data)
    frame, item = _select(data, ref, id_col, top, rank_col)
    where = f"version {ref}"
    spec = _task_spec(
        frame, where, task=task, fields=fields, prompt=prompt, labels=labels,
        label_col=label_col, scale=scale,
    )  # fmt: skip
    _check_ids(frame, item)
    shown_suggestion = suggest_col if suggest else None
    if suggest:
        _check_columns(frame, [suggest_col], where, "--suggest-col")
        if suggest_score is not None:
            _check_columns(frame, [suggest_score], where, "--suggest-score")
    used = {item, *spec.fields, spec.prompt, shown_suggestion, suggest_score}
    frame, items = _items(frame, item, used)
    gold_data = None if gold is None else read_data(gold, store, what="gold")
    gold_id = None if gold_data is None else _source(gold_data)
    n_gold = 0
    if gold_data is not None:
        assert gold is not None
        chosen = _gold_items(
            gold_data, gold, items, item=item, frame=frame, spec=spec, gold_label=gold_label,
            gold_share=gold_share, suggest_col=shown_suggestion, seed=seed,
        )  # fmt: skip
        n_gold = chosen.height
        items = pl.concat([items, chosen], how="diagonal_relaxed")
    created = now()
    salt = hash_json({"source": src_id, "gold": gold_id, "created": created, "seed": seed})
    items = _tasks(items, salt, spec, seed=seed, suggest_col=shown_suggestion)
    files = tool_files(
        spec, items, tool, overlap=overlap, title=title or f"tamis {ref}",
        suggest_score=suggest_score,
    )  # fmt: skip
    record = items.select(
        *OWN_COLUMNS,
        *[
            pl.col(c).alias(f"orig_{c}" if c in OWN_COLUMNS else c)
            for c in frame.columns
            if c != item and c in items.columns
        ],
    )
    params = {
        "source": src_id, "ref": ref, "tool": tool, "task": spec.to_json(), "id_column": item,
        "gold": gold_id, "gold_label": gold_label if gold else None,
        "gold_share": gold_share if gold else 0.0, "overlap": overlap,
        "suggest": shown_suggestion, "top": top, "seed": seed, "created_at": created,
    }  # fmt: skip
    version_id = hash_json(
        {"annotate_export": params, "tasks": record.get_column("task_id").to_list()}
    )
    report = {
        "tool": tool,
        "task": spec.to_json(),
        "sent_at": created,
        "dir": str(to.resolve()),
        "files": sorted(files),
        "items": frame.height,
        "gold_items": n_gold,
        "gold_share": (n_gold / items.height) if items.height else 0.0,
        "overlap": overlap,
        "source": {"ref": ref, "id": src_id},
        "gold": {"ref": gold, "id": gold_id} if gold else None,
    }
    parents = [{"id": v, "role": r} for v, r in ((data.version, "input"), (
        None if gold_data is None else gold_data.version, "gold")) if v]  # fmt: skip
    # the files go out only once the record is in the store: an import can always be checked
    manifest = record_export(
        store, version_id, record, params=params, report=report, parents=parents, seed=seed
    )
    write_tree_atomic(files, to, overwrite=overwrite)
    return {
        "id": version_id,
        "ref": manifest["name"],
        **{k: report[k] for k in ("tool", "dir", "files", "items", "gold_items", "overlap")},
        "tasks": record.height,
    }
