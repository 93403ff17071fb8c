"""Argilla (2.x): a dataset directory its client loads with `rg.Dataset.from_disk(DIR)`, and its
records exported back (`dataset.records.to_json(...)` / `dataset.to_disk(...)`) parsed.

Layout (argilla `DiskImportExportMixin`): `DIR/.argilla/dataset.json` (the dataset model: name,
guidelines, distribution), `DIR/.argilla/settings.json` (`Settings.serialize()`: fields,
questions, metadata, distribution `{"strategy": "overlap", "min_submitted": K}`), and
`DIR/records.json`, a list of `Record.to_dict()`:
`{"id", "fields", "metadata", "suggestions": {question: {"value", "score", "agent"}},
"responses": {question: [{"value", "user_id"[, "status"]}]}, "vectors", "status"}`.
"""

from __future__ import annotations

from typing import Any

from tamis.curate.annotation.tasks import (
    SUGGESTER,
    TASK_KEY,
    ImportCounts,
    Suggestion,
    TaskSpec,
    Vote,
)
from tamis.errors import TamisError

RECORDS = "records.json"
SETTINGS = ".argilla/settings.json"
DATASET = ".argilla/dataset.json"


def _field(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "title": name,
        "required": True,
        "description": None,
        "type": "text",
        "settings": {"type": "text", "use_markdown": False},
    }


def _question(spec: TaskSpec) -> dict[str, Any]:
    q = spec.question
    if spec.task == "rating":
        settings: dict[str, Any] = {
            "type": "rating",
            "options": [{"value": v} for v in range(1, spec.scale + 1)],
        }
        kind = "rating"
    else:
        if spec.task == "classification":
            options = [{"value": str(lab), "text": str(lab)} for lab in spec.labels]
        else:
            options = [{"value": "a", "text": "Response A"}, {"value": "b", "text": "Response B"}]
        settings = {"type": "label_selection", "options": options, "visible_options": None}
        kind = "label_selection"
    return {
        "name": q,
        "title": {
            "classification": "Label",
            "preference": "Which response is better?",
            "rating": f"Rating (1-{spec.scale})",
        }[spec.task],
        "description": None,
        "required": True,
        "type": kind,
        "settings": settings,
    }


def field_names(spec: TaskSpec) -> list[str]:
    if spec.task == "preference":
        return [*([spec.prompt] if spec.prompt else []), "answer_a", "answer_b"]
    return [
        *([spec.prompt] if spec.prompt and spec.prompt not in spec.fields else []),
        *spec.fields,
    ]


def settings(spec: TaskSpec, *, overlap: int, guidelines: str | None = None) -> dict[str, Any]:
    """`Settings.serialize()`-shaped dict: fields, the question, the hidden task id, overlap."""
    return {
        "guidelines": guidelines,
        "questions": [_question(spec)],
        "fields": [_field(n) for n in field_names(spec)],
        "vectors": [],
        "metadata": [
            {
                "name": TASK_KEY,
                "title": TASK_KEY,
                "visible_for_annotators": False,
                "settings": {"type": "terms", "values": None, "visible_for_annotators": False},
            }
        ],
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": overlap},
        "mapping": None,
    }


def dataset_model(name: str, *, overlap: int, guidelines: str | None = None) -> dict[str, Any]:
    return {
        "id": None,
        "name": name,
        "status": "draft",
        "guidelines": guidelines,
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": overlap},
        "workspace_id": None,
        "last_activity_at": None,
    }


def build_record(
    spec: TaskSpec, task: str, row: dict[str, Any], *, suggestion: Suggestion | None = None
) -> dict[str, Any]:
    """One Argilla record: the shown fields, the opaque task id, the suggestion when given."""
    fields: dict[str, Any] = {}
    if spec.prompt:
        fields[spec.prompt] = _text(row.get(spec.prompt))
    if spec.task == "preference":
        fields["answer_a"], fields["answer_b"] = _text(row["_shown_a"]), _text(row["_shown_b"])
    else:
        for col in spec.fields:
            fields[col] = _text(row.get(col))
    suggestions: dict[str, Any] = {}
    if suggestion is not None:
        value: Any = int(suggestion[0]) if spec.task == "rating" else suggestion[0]
        suggestions[spec.question] = {
            "value": value,
            "score": None if suggestion[1] is None else float(suggestion[1]),
            "agent": SUGGESTER,
        }
    return {
        "id": task,
        "fields": fields,
        "metadata": {TASK_KEY: task},
        "suggestions": suggestions,
        "responses": {},
        "vectors": {},
        "status": "pending",
        "_server_id": None,
    }


def _text(value: Any) -> str:
    """Argilla text fields are strings; a null is shown as an empty string."""
    return "" if value is None else str(value)


def parse_records(
    records: Any, spec: TaskSpec, counts: ImportCounts, *, file: str = "records.json"
) -> list[Vote]:
    """Votes from Argilla records (responses per user). Discarded responses are `skipped`,
    drafts `draft`, answers outside the question's options `unknown_labels` (by the caller)."""
    if isinstance(records, dict) and isinstance(records.get("records"), list):
        records = records["records"]
    if not isinstance(records, list):
        raise TamisError(
            "Argilla records are a JSON list of records",
            file=file,
            fix="export with `dataset.records.to_json(PATH)` or `dataset.to_disk(DIR)` "
            "(then pass DIR/records.json)",
        )
    votes: list[Vote] = []
    seen: set[str] = set()
    for i, rec in enumerate(records):
        tid = _record_task(rec, i, counts, seen)
        if tid is None:
            continue
        for resp in _responses(rec["responses"], spec.question, tid, counts):
            vote = _vote(resp, tid, spec, counts)
            if vote is not None:
                votes.append(vote)
    return votes


def _record_task(rec: Any, i: int, counts: ImportCounts, seen: set[str]) -> str | None:
    """The record's tamis task id, or None (counted) for a bad, repeated or unanswered record."""
    if not isinstance(rec, dict):
        counts.add("unknown_items", task=f"#{i}", detail="record is not an object")
        return None
    meta = rec.get("metadata") if isinstance(rec.get("metadata"), dict) else {}
    tid = (meta or {}).get(TASK_KEY) or rec.get("id")
    if tid is None:
        counts.add("unknown_items", task=f"#{i}", detail=f"no id or {TASK_KEY}")
        return None
    tid = str(tid)
    if tid in seen:
        counts.add("duplicate_tasks", task=tid, detail="record listed twice: second ignored")
        return None
    seen.add(tid)
    responses = rec.get("responses")
    if responses is None or responses == {}:
        counts.add("unannotated_items", task=tid, detail="no responses")
        return None
    if not isinstance(responses, dict):
        counts.add("malformed_results", task=tid, detail="responses is not an object")
        return None
    return tid


def _responses(responses: dict[str, Any], q: str, tid: str, counts: ImportCounts) -> list[Any]:
    """The responses to question `q` (none, counted, when the record has none)."""
    mine = responses.get(q)
    if not mine:
        other = ", ".join(sorted(map(str, responses))) or "none"
        counts.add("malformed_results", task=tid, detail=f"no responses to '{q}' (has: {other})")
        return []
    return mine if isinstance(mine, list) else [mine]


def _vote(resp: Any, tid: str, spec: TaskSpec, counts: ImportCounts) -> Vote | None:
    """One submitted response as a vote; None (counted) when discarded, a draft or malformed."""
    if not isinstance(resp, dict):
        counts.add("malformed_results", task=tid, detail="response is not an object")
        return None
    who = resp.get("user_id") or resp.get("user")
    status = str(resp.get("status") or "submitted")
    if status == "discarded":
        counts.add("skipped", task=tid, annotator=who, detail="discarded")
        return None
    if status == "draft":
        counts.add("draft", task=tid, annotator=who, detail="draft response")
        return None
    if who is None:
        counts.add("malformed_results", task=tid, detail="response without user_id")
        return None
    value = resp.get("value")
    if value is None or isinstance(value, list | dict):
        counts.add("malformed_results", task=tid, annotator=who, detail=f"value {value!r}")
        return None
    answer = _rating(value) if spec.task == "rating" else str(value)
    if answer is None:
        counts.add("malformed_results", task=tid, annotator=who, detail=f"rating {value!r}")
        return None
    when = resp.get("updated_at") or resp.get("inserted_at")
    return Vote(tid, str(who), answer, None if when is None else str(when))


def _rating(value: Any) -> str | None:
    """An integer rating as text, or None (a bool, a fraction, or not a number)."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return str(int(number)) if number.is_integer() else None
