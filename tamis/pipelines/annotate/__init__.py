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

Modules: `items` (what is sent: items, task, gold), `export` (tasks and the tool's files),
`ingest` (tool file -> annotations), `record` (the store records and atomic file writes). The
tools' file formats are `tamis.curate.annotation.files`.
"""

from tamis.curate.annotation.files import read_votes
from tamis.pipelines.annotate.export import export_annotations
from tamis.pipelines.annotate.ingest import import_annotations
from tamis.pipelines.annotate.record import TOOLS

__all__ = ["TOOLS", "export_annotations", "import_annotations", "read_votes"]
