"""`tamis annotate export REF --tool label-studio|argilla --task ... --to DIR` and
`tamis annotate import FILE --from label-studio|argilla --export ID` (tamis/pipelines/annotate).

Options are parsed here, the work is `tamis.pipelines.annotate`, and the result is printed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from tamis.cli.render import (
    DEFAULT_STORE,
    cli_errors,
    emit,
    json_option,
    open_store,
    out,
    store_option,
)


def _opt(flag: str, help: str) -> Any:
    return typer.Option(flag, help=help)


# export
Ref = Annotated[str, typer.Argument(help="store ref/id (or data file) of the items to label")]
Tool = Annotated[str, _opt("--tool", "label-studio or argilla")]
Task = Annotated[str, _opt("--task", "classification, preference or rating")]
To = Annotated[Path, _opt("--to", "new directory for the tool's files")]
Labels = Annotated[str | None, _opt("--labels", "classes, comma-separated")]
LabelCol = Annotated[str | None, _opt("--label-col", "take the classes from this column")]
Fields = Annotated[
    str | None, _opt("--fields", "columns shown (preference: RESPONSE_A,RESPONSE_B)")
]
Prompt = Annotated[str | None, _opt("--prompt", "a prompt column")]
IdCol = Annotated[str | None, _opt("--id", "the item id column")]
Scale = Annotated[int, _opt("--scale", "rating: 1..SCALE")]
Gold = Annotated[str | None, _opt("--gold", "store ref/id (or data file) of gold items")]
GoldLabel = Annotated[str, _opt("--gold-label", "the gold version's answer column")]
GoldShare = Annotated[float, _opt("--gold-share", "share of gold among the tasks")]
Overlap = Annotated[int, _opt("--overlap", "annotators per item")]
Suggest = Annotated[bool, _opt("--suggest", "pre-annotate with a model's suggestion")]
SuggestCol = Annotated[str, _opt("--suggest-col", "the suggested answer column")]
SuggestScore = Annotated[str | None, _opt("--suggest-score", "the suggestion's score column")]
Top = Annotated[int | None, _opt("--top", "only the N best-ranked (active_learning)")]
RankCol = Annotated[str, _opt("--rank-col", "ranking column for --top")]
Seed = Annotated[int, _opt("--seed", "gold draw and order")]
Overwrite = Annotated[bool, _opt("--overwrite", "replace tamis's files in an existing --to")]
# import
File = Annotated[Path, typer.Argument(help="the tool's JSON export")]
FromTool = Annotated[str, _opt("--from", "label-studio or argilla")]
ExportId = Annotated[str, _opt("--export", "the export id (or a prefix)")]
NewRef = Annotated[str | None, _opt("--ref", "ref to give the new version")]
OutPath = Annotated[Path | None, _opt("--out", "also write the rows to this Parquet file")]


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts or None


def _print_export(result: dict[str, Any]) -> None:
    out.print(
        f"exported {result['tasks']} tasks ({result['gold_items']} gold) for "
        f"{result['tool']} to {result['dir']}: {', '.join(result['files'])}\n"
        f"export id {result['id']} (ref {result['ref']}); after labelling run\n"
        f"  tamis annotate import FILE --from {result['tool']} --export {result['id'][:12]}",
        highlight=False,
    )


def _print_import(result: dict[str, Any]) -> None:
    out.print(
        f"imported {result['annotations']} annotations on {result['items_labelled']} of "
        f"{result['items_sent']} items by {result['annotators']} annotators "
        f"({result['gold_annotations']} on gold) -> {result['ref']} ({result['id'][:12]})",
        highlight=False,
    )
    lost = {k: v for k, v in result["not_imported"].items() if v}
    if not lost:
        return
    out.print(
        "not imported: "
        + ", ".join(f"{k} {v}" for k, v in lost.items())
        + " (each one is in the version's `dropped` table and in --json)",
        highlight=False,
    )
    for d in result["dropped"][:10]:
        who = f" by {d['annotator']}" if d["annotator"] else ""
        line = f"  {d['reason']}: task {d['task']}{who} {d['detail']}".rstrip()
        out.print(line, highlight=False, markup=False)
    if len(result["dropped"]) > 10:
        out.print(f"  ... and {len(result['dropped']) - 10} more", highlight=False)


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        help="Annotation round trip: export items to Label Studio / Argilla, import labels back.",
        no_args_is_help=True,
    )

    @sub.command("export")
    @cli_errors
    def export(
        ref: Ref, tool: Tool, task: Task, to: To, labels: Labels = None, label_col: LabelCol = None,
        fields: Fields = None, prompt: Prompt = None, id_col: IdCol = None, scale: Scale = 5,
        gold: Gold = None, gold_label: GoldLabel = "label", gold_share: GoldShare = 0.05,
        overlap: Overlap = 1, suggest: Suggest = False, suggest_col: SuggestCol = "suggested_label",
        suggest_score: SuggestScore = None, top: Top = None,
        rank_col: RankCol = "active_learning_rank", seed: Seed = 0, overwrite: Overwrite = False,
        store: store_option = DEFAULT_STORE, as_json: json_option = False,
    ) -> None:  # fmt: skip
        """Write the tool's import files into DIR and record the export in the store."""
        from tamis.pipelines.annotate import export_annotations

        result = export_annotations(
            open_store(store), ref, tool=tool, task=task, to=to, labels=_split(labels),
            label_col=label_col, fields=_split(fields), prompt=prompt, id_col=id_col, scale=scale,
            gold=gold, gold_label=gold_label, gold_share=gold_share, overlap=overlap,
            suggest=suggest, suggest_col=suggest_col, suggest_score=suggest_score, top=top,
            rank_col=rank_col, seed=seed, overwrite=overwrite,
        )  # fmt: skip
        emit(result, as_json, lambda: _print_export(result))

    @sub.command("import")
    @cli_errors
    def import_(
        file: File, tool: FromTool, export_id: ExportId, ref: NewRef = None,
        out_path: OutPath = None, store: store_option = DEFAULT_STORE, as_json: json_option = False,
    ) -> None:  # fmt: skip
        """Read the tool's export into a version: one row per (item, annotator, label, time)."""
        from tamis.pipelines.annotate import import_annotations

        result = import_annotations(
            open_store(store), file, tool=tool, export=export_id, ref=ref, out=out_path
        )
        emit(result, as_json, lambda: _print_import(result))

    app.add_typer(sub, name="annotate")
