"""Label Studio: the labeling config XML, the tasks JSON it imports, and its JSON export parsed.

Written from Label Studio's documented formats (labelstud.io/guide/tasks, /guide/export,
/templates): a task is `{"data": {...}, "predictions": [{"model_version", "score", "result"}]}`;
the JSON export is a list of tasks, each with `annotations: [{"completed_by", "result",
"was_cancelled", "created_at", ...}]` and results like
`{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["pos"]}}`,
`{"type": "pairwise", "value": {"selected": "left"}}` or `{"type": "rating", "value": {"rating": 4}}`.
"""

from __future__ import annotations

import re
from typing import Any
from xml.sax.saxutils import quoteattr

from tamis.curate.annotation import tasks as task_types
from tamis.curate.annotation.tasks import TASK_KEY, ImportCounts, TaskSpec, Vote
from tamis.errors import TamisError

RESULT_TYPE = {"classification": "choices", "preference": "pairwise", "rating": "rating"}


def data_key(column: str) -> str:
    """A task `data` key usable as a `$variable` in the config: word characters only."""
    key = re.sub(r"\W", "_", column)
    return key if key and not key[0].isdigit() else f"c_{key}"


def labeling_config(spec: TaskSpec) -> str:
    """The `<View>` XML for the task type: Choices, Pairwise or Rating."""
    q = spec.question
    lines = ["<View>"]
    if spec.prompt:
        lines.append(f'  <Header value="${data_key(spec.prompt)}"/>')
    if spec.task == "preference":
        a, b = (data_key(f) for f in ("a", "b"))
        lines.append(
            f'  <Pairwise name="{q}" toName="{a},{b}" selectionStyle="background: #e6f0ff"/>'
        )
        lines.append(f'  <Text name="{a}" value="$answer_a"/>')
        lines.append(f'  <Text name="{b}" value="$answer_b"/>')
    else:
        for col in spec.fields:
            key = data_key(col)
            if len(spec.fields) > 1:
                lines.append(f"  <Header value={quoteattr(col)}/>")
            lines.append(f'  <Text name="f_{key}" value="${key}"/>')
        target = f"f_{data_key(spec.fields[0])}"
        if spec.task == "classification":
            lines.append(
                f'  <Choices name="{q}" toName="{target}" choice="single" showInline="true">'
            )
            lines.extend(f"    <Choice value={quoteattr(str(lab))}/>" for lab in spec.labels)
            lines.append("  </Choices>")
        else:
            lines.append(
                f'  <Rating name="{q}" toName="{target}" maxRating="{spec.scale}" icon="star" '
                'size="medium"/>'
            )
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _to_name(spec: TaskSpec) -> str:
    # a <Pairwise> result names the control itself as to_name (label-studio-sdk's PairwiseTag)
    return spec.question if spec.task == "preference" else f"f_{data_key(spec.fields[0])}"


def result_for(spec: TaskSpec, answer: str) -> dict[str, Any]:
    """One Label Studio result entry holding `answer` (a label, `a`/`b`, or a rating)."""
    kind = RESULT_TYPE[spec.task]
    if spec.task == "classification":
        value: dict[str, Any] = {"choices": [answer]}
    elif spec.task == "preference":
        value = {"selected": "left" if answer == "a" else "right"}
    else:
        value = {"rating": int(answer)}
    return {"from_name": spec.question, "to_name": _to_name(spec), "type": kind, "value": value}


def build_task(
    spec: TaskSpec,
    task: str,
    row: dict[str, Any],
    *,
    suggestion: task_types.Suggestion | None = None,
) -> dict[str, Any]:
    """One task: `data` holds the shown columns and the opaque task id; `predictions` the
    suggestion (pre-annotation) when given."""
    data: dict[str, Any] = {TASK_KEY: task}
    if spec.prompt:
        data[data_key(spec.prompt)] = row.get(spec.prompt)
    if spec.task == "preference":
        data["answer_a"], data["answer_b"] = row["_shown_a"], row["_shown_b"]
    else:
        for col in spec.fields:
            data[data_key(col)] = row.get(col)
    out: dict[str, Any] = {"data": data}
    if suggestion is not None:
        pred: dict[str, Any] = {
            "model_version": task_types.SUGGESTER,
            "result": [result_for(spec, suggestion[0])],
        }
        if suggestion[1] is not None:
            pred["score"] = float(suggestion[1])
        out["predictions"] = [pred]
    return out


def project_settings(spec: TaskSpec, *, title: str, overlap: int) -> dict[str, Any]:
    """Project fields for `POST /api/projects` (or the SDK): config and the overlap setting."""
    return {
        "title": title,
        "label_config": labeling_config(spec),
        "maximum_annotations": overlap,
        "overlap_cohort_percentage": 100,
        "show_skip_button": True,
    }


def _annotator(ann: dict[str, Any]) -> str | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return None if who is None else str(who)


def _answer(spec: TaskSpec, result: Any) -> tuple[str | None, str]:
    """The answer in one annotation's `result` list, or (None, why it is malformed)."""
    if not isinstance(result, list):
        return None, "result is not a list"
    mine = [r for r in result if isinstance(r, dict) and r.get("from_name") == spec.question]
    if not mine:
        return None, "empty result" if not result else f"no result for '{spec.question}'"
    if len(mine) > 1:
        return None, f"{len(mine)} results for '{spec.question}'"
    value = mine[0].get("value")
    if not isinstance(value, dict):
        return None, "result has no value"
    if spec.task == "classification":
        choices = value.get("choices")
        if not isinstance(choices, list) or len(choices) != 1:
            return None, f"expected one choice, got {choices!r}"
        return str(choices[0]), ""
    if spec.task == "preference":
        sel = value.get("selected")
        if sel not in ("left", "right"):
            return None, f"pairwise selected {sel!r} (expected left/right)"
        return ("a" if sel == "left" else "b"), ""
    rating = value.get("rating")
    if isinstance(rating, bool) or not isinstance(rating, int | float) or rating != int(rating):
        return None, f"rating {rating!r} is not an integer"
    return str(int(rating)), ""


def parse_export(
    tasks: Any, spec: TaskSpec, counts: ImportCounts, *, file: str = "export"
) -> list[Vote]:
    """Votes from Label Studio's JSON export (a list of tasks with `annotations`).

    Cancelled (skipped) annotations, malformed results and tasks without the tamis id are
    counted in `counts`, never silently dropped. Task ids not in the export record are left to
    the caller (it knows the record)."""
    if not isinstance(tasks, list):
        raise TamisError(
            "a Label Studio JSON export is a list of tasks",
            file=file,
            fix="export the project as 'JSON' (not JSON_MIN, CSV or COCO) in Label Studio",
        )
    votes: list[Vote] = []
    seen: set[str] = set()
    for i, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            if isinstance(task, dict) and TASK_KEY in task:
                raise TamisError(
                    "this looks like Label Studio's JSON_MIN export (no `annotations`)",
                    file=file,
                    fix="export as 'JSON': it keeps every annotator's result and completed_by",
                )
            counts.add("unknown_items", task=f"#{i}", detail="task without a data object")
            continue
        tid = task["data"].get(TASK_KEY)
        if tid is None:
            counts.add("unknown_items", task=task.get("id", f"#{i}"), detail=f"no {TASK_KEY}")
            continue
        if str(tid) in seen:
            counts.add("duplicate_tasks", task=tid, detail="task listed twice: second ignored")
            continue
        seen.add(str(tid))
        anns = task.get("annotations")
        if not isinstance(anns, list) or not anns:
            counts.add("unannotated_items", task=tid, detail="no annotations")
            continue
        for ann in anns:
            if not isinstance(ann, dict):
                counts.add("malformed_results", task=tid, detail="annotation is not an object")
                continue
            who = _annotator(ann)
            if ann.get("was_cancelled"):
                counts.add("skipped", task=tid, annotator=who, detail="was_cancelled")
                continue
            if who is None:
                counts.add("malformed_results", task=tid, detail="no completed_by")
                continue
            answer, why = _answer(spec, ann.get("result"))
            if answer is None:
                counts.add("malformed_results", task=tid, annotator=who, detail=why)
                continue
            when = ann.get("created_at") or ann.get("updated_at")
            votes.append(Vote(str(tid), who, answer, None if when is None else str(when)))
    return votes
