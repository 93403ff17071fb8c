"""`tamis annotate export REF --tool label-studio|argilla --task ... --to DIR` and
`tamis annotate import FILE --from label-studio|argilla --export ID` (tamis/pipelines/annotate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tamis.cli.render import DEFAULT_STORE, cli_errors, emit, json_option, out, store_option


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    return parts or None


def register(app: typer.Typer) -> None:
    sub = typer.Typer(
        help="Annotation round trip: export items to Label Studio / Argilla, import labels back.",
        no_args_is_help=True,
    )

    @sub.command("export")
    @cli_errors
    def export(
        ref: Annotated[str, typer.Argument(help="store ref/id of the items to label")],
        tool: Annotated[str, typer.Option("--tool", help="label-studio or argilla")],
        task: Annotated[str, typer.Option("--task", help="classification, preference or rating")],
        to: Annotated[Path, typer.Option("--to", help="new directory for the tool's files")],
        labels: Annotated[
            str | None, typer.Option("--labels", help="classes, comma-separated")
        ] = None,
        label_col: Annotated[
            str | None, typer.Option("--label-col", help="take the classes from this column")
        ] = None,
        fields: Annotated[
            str | None,
            typer.Option("--fields", help="columns shown (preference: RESPONSE_A,RESPONSE_B)"),
        ] = None,
        prompt: Annotated[str | None, typer.Option("--prompt", help="a prompt column")] = None,
        id_col: Annotated[str | None, typer.Option("--id", help="the item id column")] = None,
        scale: Annotated[int, typer.Option("--scale", help="rating: 1..SCALE")] = 5,
        gold: Annotated[
            str | None, typer.Option("--gold", help="store ref/id of gold items")
        ] = None,
        gold_label: Annotated[
            str, typer.Option("--gold-label", help="the gold version's answer column")
        ] = "label",
        gold_share: Annotated[
            float, typer.Option("--gold-share", help="share of gold among the tasks")
        ] = 0.05,
        overlap: Annotated[int, typer.Option("--overlap", help="annotators per item")] = 1,
        suggest: Annotated[
            bool, typer.Option("--suggest", help="pre-annotate with a model's suggestion")
        ] = False,
        suggest_col: Annotated[
            str, typer.Option("--suggest-col", help="the suggested answer column")
        ] = "suggested_label",
        suggest_score: Annotated[
            str | None, typer.Option("--suggest-score", help="the suggestion's score column")
        ] = None,
        top: Annotated[
            int | None, typer.Option("--top", help="only the N best-ranked (active_learning)")
        ] = None,
        rank_col: Annotated[
            str, typer.Option("--rank-col", help="ranking column for --top")
        ] = "active_learning_rank",
        seed: Annotated[int, typer.Option("--seed", help="gold draw and order")] = 0,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="replace tamis's files in an existing --to")
        ] = False,
        store: store_option = DEFAULT_STORE,
        as_json: json_option = False,
    ) -> None:
        """Write the tool's import files into DIR and record the export in the store."""
        from tamis.pipelines.annotate import export_annotations
        from tamis.pipelines.store import Store

        result = export_annotations(
            Store(store),
            ref,
            tool=tool,
            task=task,
            to=to,
            labels=_split(labels),
            label_col=label_col,
            fields=_split(fields),
            prompt=prompt,
            id_col=id_col,
            scale=scale,
            gold=gold,
            gold_label=gold_label,
            gold_share=gold_share,
            overlap=overlap,
            suggest=suggest,
            suggest_col=suggest_col,
            suggest_score=suggest_score,
            top=top,
            rank_col=rank_col,
            seed=seed,
            overwrite=overwrite,
        )
        emit(
            result,
            as_json,
            lambda: out.print(
                f"exported {result['tasks']} tasks ({result['gold_items']} gold) for "
                f"{result['tool']} to {result['dir']}: {', '.join(result['files'])}\n"
                f"export id {result['id']} (ref {result['ref']}); after labelling run\n"
                f"  tamis annotate import FILE --from {result['tool']} --export {result['id'][:12]}",
                highlight=False,
            ),
        )

    @sub.command("import")
    @cli_errors
    def import_(
        file: Annotated[Path, typer.Argument(help="the tool's JSON export")],
        tool: Annotated[str, typer.Option("--from", help="label-studio or argilla")],
        export_id: Annotated[str, typer.Option("--export", help="the export id (or a prefix)")],
        ref: Annotated[
            str | None, typer.Option("--ref", help="ref to give the new version")
        ] = None,
        out_path: Annotated[
            Path | None, typer.Option("--out", help="also write the rows to this Parquet file")
        ] = None,
        store: store_option = DEFAULT_STORE,
        as_json: json_option = False,
    ) -> None:
        """Read the tool's export into a version: one row per (item, annotator, label, time)."""
        from tamis.pipelines.annotate import import_annotations
        from tamis.pipelines.store import Store

        result = import_annotations(
            Store(store), file, tool=tool, export=export_id, ref=ref, out=out_path
        )

        def render() -> None:
            out.print(
                f"imported {result['annotations']} annotations on {result['items_labelled']} of "
                f"{result['items_sent']} items by {result['annotators']} annotators "
                f"({result['gold_annotations']} on gold) -> {result['ref']} ({result['id'][:12]})",
                highlight=False,
            )
            lost = {k: v for k, v in result["not_imported"].items() if v}
            if lost:
                out.print(
                    "not imported: "
                    + ", ".join(f"{k} {v}" for k, v in lost.items())
                    + " (each one is in the version's `dropped` table and in --json)",
                    highlight=False,
                )
                for d in result["dropped"][:10]:
                    who = f" by {d['annotator']}" if d["annotator"] else ""
                    out.print(
                        f"  {d['reason']}: task {d['task']}{who} {d['detail']}".rstrip(),
                        highlight=False,
                        markup=False,
                    )
                if len(result["dropped"]) > 10:
                    out.print(f"  ... and {len(result['dropped']) - 10} more", highlight=False)

        emit(result, as_json, render)

    app.add_typer(sub, name="annotate")
