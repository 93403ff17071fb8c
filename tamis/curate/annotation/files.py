"""The files of the annotation tools: what tamis writes for them, and reading their exports back.

`tool_files` turns tasks (rows with `task_id`, the shown columns, `swapped` and `suggestion`) into
Label Studio's tasks + labeling config + project settings, or an Argilla dataset directory;
`read_votes` parses the tool's own export into votes (counting what it cannot use). No store here:
`tamis.pipelines.annotate` records what was sent and checks imports against it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from tamis.curate.annotation import argilla as rg_format
from tamis.curate.annotation import label_studio as ls_format
from tamis.curate.annotation.tasks import ImportCounts, Suggestion, TaskSpec, Vote
from tamis.errors import TamisError


def _suggestion(
    spec: TaskSpec, row: dict[str, Any], suggest_score: str | None
) -> Suggestion | None:
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


def export_file(path: Path) -> Path:
    """The file a tool's export lives in (Argilla: `records.json` of a directory)."""
    return path if path.is_file() else path / rg_format.RECORDS
