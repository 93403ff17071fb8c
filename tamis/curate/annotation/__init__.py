"""Annotation round trip: export items to Label Studio / Argilla, parse their exports back into a
long `(item, annotator, label, time)` table, aggregate raters (Dawid-Skene, Bradley-Terry) and
rank what to label next (ActiveLab).

These are capabilities on plain frames and JSON: they know nothing of the store or the CLI
(`tamis/pipelines/annotate.py` records exports and imports in the store).
"""

from tamis.curate.annotation.tasks import TASKS, ImportCounts, TaskSpec

__all__ = ["TASKS", "ImportCounts", "TaskSpec"]
