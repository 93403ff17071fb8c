"""Annotation round trip on the store: `tamis annotate export` and `tamis annotate import`.

An export writes the files an annotation tool loads (Label Studio tasks + config, or an Argilla
dataset directory) and records in the store, as a version of step type `annotate_export`, what
was sent: one row per task (opaque task id, item id, gold flag and gold label, the order a
preference pair was shown in, the suggestion) with the items' original columns, and when. Its
version id is the export id.

An import reads the tool's own export, checks it against that record and writes a version of
step type `annotate_import`: one row per (item, annotator, label, time), with `is_gold`,
`gold_label` and the item's original columns (`orig_<name>` where a name clashes). Everything
not turned into a row is counted per reason in the report and listed in its `dropped` table.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tamis.curate.annotation import argilla as rg_format
from tamis.curate.annotation import label_studio as ls_format
from tamis.curate.annotation.tasks import REASONS, ImportCounts, TaskSpec, Vote, task_id
from tamis.errors import StoreError, TamisError
from tamis.pipelines.hashing import hash_file, hash_json, module_code_hash
from tamis.pipelines.store import Store, check_ref_name, now

TOOLS = ("label-studio", "argilla")
PIPELINE = "annotate"
OWN_COLUMNS = ("task_id", "item", "is_gold", "gold_label", "swapped", "position", "suggestion")
IMPORT_COLUMNS = ("task_id", "item", "annotator", "label", "time", "is_gold", "gold_label", "tool")


def _check_tool(tool: str, flag: str) -> str:
    if tool not in TOOLS:
        raise TamisError(f"unknown tool {tool!r}", field=flag, fix=f"use {' or '.join(TOOLS)}")
    return tool


def _item_column(frame: pl.DataFrame, id_col: str | None, where: str) -> str:
    if id_col is not None:
        if id_col not in frame.columns:
            raise TamisError(
                f"id column '{id_col}' is not in {where}",
                column=id_col,
                fix=f"columns: {', '.join(frame.columns[:20])}",
            )
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
    for col in cols:
        if col not in frame.columns:
            raise TamisError(
                f"column '{col}' is not in {where}",
                column=col,
                field=flag,
                fix=f"columns: {', '.join(frame.columns[:20])}",
            )


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


def _write_tree_atomic(files: dict[str, str], to: Path, *, overwrite: bool) -> None:
    """Write files into a new directory `to` (built beside it, then renamed: never half a
    directory). With `overwrite` an existing directory is kept and only these files are
    replaced, each atomically."""
    if to.exists() and not overwrite:
        raise TamisError(
            "the export directory already exists",
            file=str(to),
            field="--to",
            fix="pick a new directory, or pass --overwrite to replace the files tamis writes there",
        )
    if to.exists() and not to.is_dir():
        raise TamisError("--to names a file, not a directory", file=str(to), field="--to")
    to.parent.mkdir(parents=True, exist_ok=True)
    if not to.exists():
        tmp = to.parent / f".{to.name}.{uuid.uuid4().hex[:8]}.tmp"
        tmp.mkdir()
        try:
            for rel, text in files.items():
                path = tmp / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path, "w") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
            os.rename(tmp, to)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return
    for rel, text in files.items():
        path = to / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        part = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(part, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(part, path)


def _records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    return frame.to_dicts()


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
    with the export `id`."""
    _check_tool(tool, "--tool")
    if overlap < 1:
        raise TamisError("overlap must be at least 1", field="--overlap")
    if not 0.0 <= gold_share < 1.0:
        raise TamisError("gold share must be in [0, 1)", field="--gold-share", fix="e.g. 0.05")
    to = Path(to)
    if to.exists() and not overwrite:  # checked first: nothing is read or recorded in vain
        _write_tree_atomic({}, to, overwrite=False)
    src_id = store.resolve(ref)
    frame = store.read(src_id)
    item = _item_column(frame, id_col, f"version {ref}")
    if top is not None:
        if rank_col not in frame.columns:
            raise TamisError(
                f"--top needs a ranking column '{rank_col}' in {ref}",
                field="--top",
                fix="export the output of an `active_learning` step, or pass --rank-col",
            )
        frame = frame.sort([rank_col, item], nulls_last=True).head(top)
    fields = fields or _default_fields(frame, task)
    _check_columns(frame, fields, f"version {ref}", "--fields")
    if prompt is None and task == "preference" and "prompt" in frame.columns:
        prompt = "prompt"
    if prompt is not None:
        _check_columns(frame, [prompt], f"version {ref}", "--prompt")
    if task == "classification" and not labels:
        col = label_col or ("label" if "label" in frame.columns else None)
        if col is None:
            raise TamisError(
                "no labels to choose from",
                field="--labels",
                fix="pass --labels a,b,... or --label-col COLUMN",
            )
        _check_columns(frame, [col], f"version {ref}", "--label-col")
        labels = sorted(str(v) for v in frame.get_column(col).drop_nulls().unique().to_list())
    spec = TaskSpec(task=task, fields=fields, labels=list(labels or []), scale=scale, prompt=prompt)
    if frame.get_column(item).null_count():
        raise TamisError(f"item id column '{item}' has nulls", column=item, fix="fill or drop them")
    dupes = frame.height - frame.get_column(item).n_unique()
    if dupes:
        raise TamisError(
            f"item id column '{item}' has {dupes} duplicate value(s)",
            column=item,
            fix="ids must be unique: dedup first or pass --id naming a unique column",
        )
    if suggest:
        _check_columns(frame, [suggest_col], f"version {ref}", "--suggest-col")
        if suggest_score is not None:
            _check_columns(frame, [suggest_score], f"version {ref}", "--suggest-score")
    used = {item, *fields, prompt, suggest_col if suggest else None, suggest_score}
    clash = {c: f"orig_{c}" for c in frame.columns if c in OWN_COLUMNS and c not in used}
    if clash:  # the items' own columns named like the record's are kept as orig_<name>
        frame = frame.rename(clash)
    items = frame.with_columns(
        pl.col(item).cast(pl.String).alias("item"), pl.lit(False).alias("is_gold")
    )
    items = items.with_columns(pl.lit(None, dtype=pl.String).alias("gold_label"))
    gold_id = None
    n_gold = 0
    if gold is not None:
        gold_id = store.resolve(gold)
        gframe = store.read(gold_id)
        gitem = _item_column(gframe, item if item in gframe.columns else None, f"gold {gold}")
        _check_columns(gframe, [gold_label], f"gold version {gold}", "--gold-label")
        _check_columns(
            gframe, fields + ([prompt] if prompt else []), f"gold version {gold}", "--gold"
        )
        if suggest and suggest_col not in gframe.columns:
            raise TamisError(
                f"with --suggest the gold items need a suggestion too: gold version {gold} has "
                f"no column '{suggest_col}', so its items would be the ones without one",
                field="--suggest",
                column=suggest_col,
                fix="add the model's suggestions to the gold version (e.g. run the same "
                "label_issues step on it) or export without --suggest",
            )
        pool = gframe.with_columns(pl.col(gitem).cast(pl.String).alias("item")).filter(
            pl.col(gold_label).is_not_null()
            & ~pl.col("item").is_in(items.get_column("item").to_list())
        )
        pool = pool.unique(subset="item", keep="first").sort("item")
        want = math.ceil(gold_share * frame.height / (1.0 - gold_share)) if gold_share else 0
        n_gold = min(want, pool.height)
        if want and pool.height < want:
            import warnings

            warnings.warn(
                f"gold {gold} has {pool.height} usable item(s), {want} wanted: all are used",
                stacklevel=2,
            )
        pick = np.random.default_rng([seed, 1]).choice(pool.height, size=n_gold, replace=False)
        chosen = pool[np.sort(pick).tolist()] if n_gold else pool.head(0)
        chosen = chosen.with_columns(
            pl.lit(True).alias("is_gold"), pl.col(gold_label).cast(pl.String).alias("gold_label")
        )
        if gitem != "item" and gitem not in frame.columns:
            chosen = chosen.drop(gitem)
        items = pl.concat([items, chosen], how="diagonal_relaxed")
    created = now()
    salt = hash_json({"source": src_id, "gold": gold_id, "created": created, "seed": seed})
    items = items.with_columns(
        pl.col("item")
        .map_elements(lambda v: task_id(v, salt), return_dtype=pl.String)
        .alias("task_id")
    ).sort("task_id")
    rng = np.random.default_rng([seed, 2])
    items = items.with_columns(
        pl.Series("position", rng.permutation(items.height), dtype=pl.Int64),
        pl.Series(
            "swapped",
            rng.random(items.height) < 0.5
            if task == "preference"
            else np.zeros(items.height, bool),
            dtype=pl.Boolean,
        ),
    ).sort("position")
    if suggest:
        items = items.with_columns(pl.col(suggest_col).cast(pl.String).alias("suggestion"))
    else:
        items = items.with_columns(pl.lit(None, dtype=pl.String).alias("suggestion"))
    if task == "preference":
        a, b = fields
        items = items.with_columns(
            pl.when(pl.col("swapped")).then(pl.col(b)).otherwise(pl.col(a)).alias("_shown_a"),
            pl.when(pl.col("swapped")).then(pl.col(a)).otherwise(pl.col(b)).alias("_shown_b"),
        )
    files = _tool_files(
        spec,
        items,
        tool,
        overlap=overlap,
        title=title or f"tamis {ref}",
        suggest=suggest,
        suggest_score=suggest_score,
    )
    orig = [c for c in frame.columns if c not in (item,)]
    record = items.select(
        *OWN_COLUMNS,
        *[
            pl.col(c).alias(f"orig_{c}" if c in OWN_COLUMNS else c)
            for c in orig
            if c in items.columns
        ],
    )
    params = {
        "source": src_id,
        "ref": ref,
        "tool": tool,
        "task": spec.to_json(),
        "id_column": item,
        "gold": gold_id,
        "gold_label": gold_label if gold else None,
        "gold_share": gold_share if gold else 0.0,
        "overlap": overlap,
        "suggest": suggest_col if suggest else None,
        "top": top,
        "seed": seed,
        "created_at": created,
    }
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
    parents = [{"id": src_id, "role": "input"}] + (
        [{"id": gold_id, "role": "gold"}] if gold_id else []
    )
    # the files go out only once the record is in the store: an import can always be checked
    manifest = store.write_version(
        version_id=version_id,
        name=f"{PIPELINE}/export-{version_id[:12]}",
        frame=record,
        parents=parents,
        step={
            "name": "export",
            "type": "annotate_export",
            "version": 1,
            "params": params,
            "code": module_code_hash("tamis.pipelines.annotate")[:32],
        },
        seed=seed,
        report=report,
        pipeline=PIPELINE,
        cache_key=version_id,
    )
    store.set_ref(manifest["name"], version_id)
    _write_tree_atomic(files, to, overwrite=overwrite)
    return {
        "id": version_id,
        "ref": manifest["name"],
        **{k: report[k] for k in ("tool", "dir", "files", "items", "gold_items", "overlap")},
        "tasks": record.height,
    }


def _tool_files(
    spec: TaskSpec,
    items: pl.DataFrame,
    tool: str,
    *,
    overlap: int,
    title: str,
    suggest: bool,
    suggest_score: str | None,
) -> dict[str, str]:
    rows = _records(items)

    def suggestion(row: dict[str, Any]) -> tuple[str, float | None] | None:
        if not suggest or row.get("suggestion") is None:
            return None
        value = str(row["suggestion"])
        if spec.task == "preference":
            # the suggestion names the better original column: shown as a or b
            first = spec.fields[1] if row["swapped"] else spec.fields[0]
            value = "a" if value == first else "b"
        score = row.get(suggest_score) if suggest_score else None
        return value, (None if score is None else float(score))

    if tool == "label-studio":
        tasks = [
            ls_format.build_task(spec, r["task_id"], r, suggestion=suggestion(r)) for r in rows
        ]
        return {
            "tasks.json": json.dumps(tasks, indent=1, default=str),
            "label_config.xml": ls_format.labeling_config(spec),
            "project.json": json.dumps(
                ls_format.project_settings(spec, title=title, overlap=overlap), indent=1
            ),
        }
    records = [
        rg_format.build_record(spec, r["task_id"], r, suggestion=suggestion(r)) for r in rows
    ]
    name = "".join(c if c.isalnum() or c in "-_" else "-" for c in title)[:60]
    return {
        rg_format.RECORDS: json.dumps(records, indent=1, default=str),
        rg_format.SETTINGS: json.dumps(rg_format.settings(spec, overlap=overlap), indent=1),
        rg_format.DATASET: json.dumps(rg_format.dataset_model(name, overlap=overlap), indent=1),
    }


# ---------------------------------------------------------------------------------- import
def _export_record(store: Store, export: str) -> tuple[str, dict[str, Any], pl.DataFrame]:
    export_id = store.resolve(export)
    manifest = store.manifest_by_id(export_id)
    if (manifest.get("step") or {}).get("type") != "annotate_export":
        raise StoreError(
            f"version {export} is not an annotation export",
            field="--export",
            fix="pass the id printed by `tamis annotate export` (see `tamis versions`)",
        )
    return export_id, manifest, store.read(export_id)


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        stamp = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.astimezone(timezone.utc)


def _load_json(path: Path, tool: str) -> Any:
    if tool == "argilla" and path.is_dir():
        path = path / rg_format.RECORDS
    if not path.is_file():
        raise TamisError(
            "annotation export file not found",
            file=str(path),
            fix="pass the JSON file the tool exported (Argilla: records.json or its directory)",
        )
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TamisError(
            f"not valid JSON ({exc})",
            file=str(path),
            fix="pass the tool's JSON export unchanged",
        ) from None


def read_votes(path: Path, *, tool: str, spec: TaskSpec, counts: ImportCounts) -> list[Vote]:
    """Votes from a tool's export file (capability-level: no store)."""
    data = _load_json(path, tool)
    if tool == "label-studio":
        return ls_format.parse_export(data, spec, counts, file=str(path))
    return rg_format.parse_records(data, spec, counts, file=str(path))


def import_annotations(
    store: Store,
    file: Path,
    *,
    tool: str,
    export: str,
    ref: str | None = None,
    out: Path | None = None,
) -> dict[str, Any]:
    """Write a version of the tool's annotations, checked against the export record."""
    _check_tool(tool, "--from")
    if ref is not None:
        check_ref_name(ref)
    file = Path(file)
    if out is not None and Path(out).exists():
        raise TamisError(
            "the output file already exists", file=str(out), field="--out", fix="pick a new path"
        )
    export_id, manifest, record = _export_record(store, export)
    sent_tool = manifest["report"]["tool"]
    if sent_tool != tool:
        raise TamisError(
            f"export {export_id[:12]} was sent to {sent_tool}, not {tool}",
            field="--from",
            fix=f"pass --from {sent_tool}",
        )
    spec = TaskSpec.from_json(manifest["report"]["task"])
    counts = ImportCounts()
    votes = read_votes(file, tool=tool, spec=spec, counts=counts)
    known = set(record.get_column("task_id").to_list())
    allowed = set(spec.answers())
    kept: list[Vote] = []
    seen_tasks: set[str] = set()
    unknown_tasks: set[str] = set()
    for v in votes:
        if v.task not in known:
            if v.task not in unknown_tasks:
                unknown_tasks.add(v.task)
                counts.add("unknown_items", task=v.task, detail="task id not in this export")
            continue
        seen_tasks.add(v.task)
        if v.answer not in allowed:
            counts.add("unknown_labels", task=v.task, annotator=v.annotator, detail=v.answer)
            continue
        kept.append(v)
    in_file = seen_tasks | {d["task"] for d in counts.dropped if d["task"] in known}
    for tid in sorted(known - in_file):
        counts.add("missing_items", task=tid, detail="sent but not in the tool's export")
    bad_times = sum(1 for v in kept if v.time is not None and _parse_time(v.time) is None)
    votes_frame = pl.DataFrame(
        {
            "task_id": [v.task for v in kept],
            "annotator": [v.annotator for v in kept],
            "_answer": [v.answer for v in kept],
            "time": [_parse_time(v.time) for v in kept],
        },
        schema={
            "task_id": pl.String,
            "annotator": pl.String,
            "_answer": pl.String,
            "time": pl.Datetime("us", "UTC"),
        },
    )
    joined = votes_frame.join(record, on="task_id", how="left")
    if spec.task == "preference":
        a, b = spec.fields
        picked_a = pl.col("_answer") == "a"
        label = (
            pl.when(picked_a != pl.col("swapped"))
            .then(pl.lit(a))
            .otherwise(pl.lit(b))
            .alias("label")
        )
    elif spec.task == "rating":
        label = pl.col("_answer").cast(pl.Int64).alias("label")
    else:
        label = pl.col("_answer").alias("label")
    orig = [c for c in record.columns if c not in OWN_COLUMNS]
    rows = (
        joined.with_columns(label, pl.lit(tool).alias("tool"))
        .select(
            *IMPORT_COLUMNS,
            *[pl.col(c).alias(f"orig_{c}" if c in IMPORT_COLUMNS else c) for c in orig],
        )
        .sort(["task_id", "annotator", "time"], nulls_last=True)
    )
    file_sha = hash_file(file if file.is_file() else file / rg_format.RECORDS)
    dropped = pl.DataFrame(
        counts.dropped,
        schema={
            "reason": pl.String,
            "task": pl.String,
            "annotator": pl.String,
            "detail": pl.String,
        },
    )
    gold_rows = rows.filter(pl.col("is_gold"))
    report = {
        "tool": tool,
        "task": spec.task,
        "export": export_id,
        "file": str(file.resolve()),
        "file_sha256": file_sha,
        "imported_at": now(),
        "annotations": rows.height,
        "items_labelled": rows.get_column("task_id").n_unique(),
        "items_sent": len(known),
        "annotators": rows.get_column("annotator").n_unique(),
        "gold_annotations": gold_rows.height,
        "not_imported": {r: counts.counts.get(r, 0) for r in REASONS},
        "times_unparsed": bad_times,
    }
    version_id = hash_json(
        {
            "annotate_import": file_sha,
            "export": export_id,
            "tool": tool,
            "code": module_code_hash("tamis.pipelines.annotate"),
        }
    )
    name = ref or f"{PIPELINE}/import-{version_id[:12]}"
    store.write_version(
        version_id=version_id,
        name=name,
        frame=rows,
        parents=[{"id": export_id, "role": "export"}],
        step={
            "name": "import",
            "type": "annotate_import",
            "params": {"tool": tool, "export": export_id, "file_sha256": file_sha},
        },
        seed=None,
        report=report,
        tables={"dropped": dropped},
        pipeline=PIPELINE,
        cache_key=version_id,
    )
    store.set_ref(name, version_id)
    if out is not None:
        out = Path(out)
        part = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
        rows.write_parquet(part)
        os.replace(part, out)
    return {"id": version_id, "ref": name, **report, "dropped": counts.dropped}
