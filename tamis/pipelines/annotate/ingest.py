"""`tamis annotate import`: a tool's export file -> a version of `(item, annotator, label, time)`.

The tool's file is parsed by its format (`tamis.curate.annotation.label_studio` / `argilla`) and
checked against the export record: votes on unknown tasks, answers outside the task's options and
tasks sent but missing are counted per reason (the version's `dropped` table), never silently lost.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.annotation.files import export_file, read_votes
from tamis.curate.annotation.tasks import REASONS, ImportCounts, TaskSpec, Vote
from tamis.errors import TamisError
from tamis.pipelines.annotate.record import (
    IMPORT_COLUMNS,
    OWN_COLUMNS,
    PIPELINE,
    check_tool,
    code_hash,
    read_export,
    record_import,
    write_parquet_atomic,
)
from tamis.pipelines.hashing import hash_file, hash_json
from tamis.pipelines.store import Store, check_ref_name, now

_VOTES_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "task_id": pl.String,
    "annotator": pl.String,
    "_answer": pl.String,
    "time": pl.Datetime("us", "UTC"),
}
_DROPPED_SCHEMA = {
    "reason": pl.String,
    "task": pl.String,
    "annotator": pl.String,
    "detail": pl.String,
}


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


def _checked_votes(
    votes: list[Vote], known: set[str], allowed: set[str], counts: ImportCounts
) -> list[Vote]:
    """The votes on sent tasks with an allowed answer; the rest, and sent tasks the file lacks,
    are counted per reason."""
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
    return kept


def _label(spec: TaskSpec) -> pl.Expr:
    """The answer as the item's label: a preference vote names the original column it chose."""
    if spec.task == "preference":
        a, b = spec.fields
        picked_a = pl.col("_answer") == "a"
        return pl.when(picked_a != pl.col("swapped")).then(pl.lit(a)).otherwise(pl.lit(b))
    if spec.task == "rating":
        return pl.col("_answer").cast(pl.Int64)
    return pl.col("_answer")


def _rows(kept: list[Vote], record: pl.DataFrame, spec: TaskSpec, tool: str) -> pl.DataFrame:
    votes = pl.DataFrame(
        {
            "task_id": [v.task for v in kept],
            "annotator": [v.annotator for v in kept],
            "_answer": [v.answer for v in kept],
            "time": [_parse_time(v.time) for v in kept],
        },
        schema=_VOTES_SCHEMA,
    )
    orig = [c for c in record.columns if c not in OWN_COLUMNS]
    return (
        votes.join(record, on="task_id", how="left")
        .with_columns(_label(spec).alias("label"), pl.lit(tool).alias("tool"))
        .select(
            *IMPORT_COLUMNS,
            *[pl.col(c).alias(f"orig_{c}" if c in IMPORT_COLUMNS else c) for c in orig],
        )
        .sort(["task_id", "annotator", "time"], nulls_last=True)
    )


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
    check_tool(tool, "--from")
    if ref is not None:
        check_ref_name(ref)
    file = Path(file)
    if out is not None and Path(out).exists():
        raise TamisError(
            "the output file already exists", file=str(out), field="--out", fix="pick a new path"
        )
    export_id, manifest, record = read_export(store, export)
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
    kept = _checked_votes(votes, known, set(spec.answers()), counts)
    bad_times = sum(1 for v in kept if v.time is not None and _parse_time(v.time) is None)
    rows = _rows(kept, record, spec, tool)
    file_sha = hash_file(export_file(file))
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
        "gold_annotations": rows.filter(pl.col("is_gold")).height,
        "not_imported": {r: counts.counts.get(r, 0) for r in REASONS},
        "times_unparsed": bad_times,
    }
    version_id = hash_json(
        {"annotate_import": file_sha, "export": export_id, "tool": tool, "code": code_hash()}
    )
    name = ref or f"{PIPELINE}/import-{version_id[:12]}"
    record_import(
        store, version_id, name, rows, export_id=export_id,
        params={"tool": tool, "export": export_id, "file_sha256": file_sha}, report=report,
        dropped=pl.DataFrame(counts.dropped, schema=_DROPPED_SCHEMA),
    )  # fmt: skip
    if out is not None:
        write_parquet_atomic(rows, Path(out))
    return {"id": version_id, "ref": name, **report, "dropped": counts.dropped}
