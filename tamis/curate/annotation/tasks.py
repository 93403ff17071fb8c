"""What an annotation task asks, shared by the Label Studio and Argilla formats.

- classification: one label out of `labels` per item (Label Studio `Choices`, Argilla
  `LabelQuestion`).
- preference: which of two responses `a`/`b` is better (Label Studio `Pairwise`, whose result is
  `left`/`right`; Argilla `LabelQuestion` with options `a`/`b`). The exporter shows each pair in a
  seeded random order, so the tool's `a` is the item's first or second response: the store record
  keeps the order and the import maps votes back to the original columns.
- rating: an integer score 1..`scale` (Label Studio `Rating`, Argilla `RatingQuestion`).

Every task carries the opaque `tamis_task` id (a salted hash of the item id): gold items look like
any other, and the store record maps the ids back to items and gold labels.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from tamis.errors import TamisError

Task = Literal["classification", "preference", "rating"]
#: a model's suggested answer and its score (pre-annotation)
Suggestion = tuple[str, float | None]
#: the name the tools show for tamis's suggestions (Label Studio model_version, Argilla agent)
SUGGESTER = "tamis-suggest"
TASKS: tuple[str, ...] = ("classification", "preference", "rating")
TASK_KEY = "tamis_task"
#: the control / question name of each task type in the tools' configs
QUESTION = {"classification": "label", "preference": "preference", "rating": "rating"}
#: import reasons, in report order: every annotation or item not turned into a row is one of these
REASONS = (
    "unknown_items",
    "duplicate_tasks",
    "missing_items",
    "unannotated_items",
    "skipped",
    "draft",
    "malformed_results",
    "unknown_labels",
)


@dataclass
class TaskSpec:
    """A task type with the columns shown to annotators and the answers allowed."""

    task: str
    fields: list[str]
    labels: list[str] = field(default_factory=list)
    scale: int = 5
    prompt: str | None = None

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise TamisError(
                f"unknown task {self.task!r}", field="--task", fix=f"use one of {', '.join(TASKS)}"
            )
        if self.task == "classification" and len(self.labels) < 2:
            raise TamisError(
                "a classification task needs at least two labels",
                field="--labels",
                fix="pass --labels a,b,... or --label-col naming a column with the classes",
            )
        if self.task == "preference" and len(self.fields) != 2:
            raise TamisError(
                "a preference task shows exactly two responses",
                field="--fields",
                fix="pass --fields RESPONSE_A,RESPONSE_B (and --prompt COLUMN)",
            )
        if self.task == "rating" and not 2 <= self.scale <= 10:
            raise TamisError("a rating scale runs 1..N with N in 2..10", field="--scale")
        if not self.fields:
            raise TamisError("no columns to show annotators", field="--fields")

    @property
    def question(self) -> str:
        return QUESTION[self.task]

    def answers(self) -> list[str]:
        """The values an answer may take, as strings."""
        if self.task == "classification":
            return list(self.labels)
        if self.task == "preference":
            return ["a", "b"]
        return [str(v) for v in range(1, self.scale + 1)]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaskSpec:
        return cls(
            task=data["task"],
            fields=list(data["fields"]),
            labels=list(data.get("labels") or []),
            scale=int(data.get("scale") or 5),
            prompt=data.get("prompt"),
        )


def task_id(item: Any, salt: str) -> str:
    """An opaque, stable task id: the item id cannot be read from it, gold looks like the rest."""
    digest = hashlib.sha256(f"{salt}\x00{item}".encode()).hexdigest()
    return f"t{digest[:20]}"


@dataclass
class ImportCounts:
    """What an import could not turn into rows, counted per reason and listed one by one."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    dropped: list[dict[str, Any]] = field(default_factory=list)

    def add(
        self, reason: str, *, task: Any = None, annotator: Any = None, detail: str = ""
    ) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.dropped.append(
            {
                "reason": reason,
                "task": None if task is None else str(task),
                "annotator": None if annotator is None else str(annotator),
                "detail": detail[:500],
            }
        )


@dataclass
class Vote:
    """One annotation as the tool wrote it: the task id, who, the raw answer, when."""

    task: str
    annotator: str
    answer: str
    time: str | None = None
