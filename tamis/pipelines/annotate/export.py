"""`tamis annotate export`: the tool's files for a store version's items, and the export record.

The items come from a store ref (or a data file, through `tamis.pipelines.data.read_data`); gold
items (optional, another ref or file) are mixed in at `gold_share`, every task gets an opaque id
and a seeded position, a preference pair a seeded order. The record goes into the store first,
then the files are written: an import can always be checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.annotation.files import tool_files
from tamis.curate.annotation.tasks import TaskSpec, task_id
from tamis.errors import TamisError
from tamis.pipelines.annotate.items import (
    check_columns,
    check_ids,
    gold_items,
    items_table,
    select_items,
    task_spec,
)
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


def _source(data: Data) -> str:
    """The id the record keeps for what was read: the version id, or the file's digest."""
    return data.version or f"file:{data.sha256()}"


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
    frame, item = select_items(data, ref, id_col, top, rank_col)
    where = f"version {ref}"
    spec = task_spec(
        frame, where, task=task, fields=fields, prompt=prompt, labels=labels,
        label_col=label_col, scale=scale,
    )  # fmt: skip
    check_ids(frame, item)
    shown_suggestion = suggest_col if suggest else None
    if suggest:
        check_columns(frame, [suggest_col], where, "--suggest-col")
        if suggest_score is not None:
            check_columns(frame, [suggest_score], where, "--suggest-score")
    used = {item, *spec.fields, spec.prompt, shown_suggestion, suggest_score}
    frame, items = items_table(frame, item, used)
    gold_data = None if gold is None else read_data(gold, store, what="gold")
    gold_id = None if gold_data is None else _source(gold_data)
    n_gold = 0
    if gold_data is not None:
        assert gold is not None
        chosen = gold_items(
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
