"""`tamis export REF --to FILE`: write a version out."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tamis.cli.render import DEFAULT_STORE, JsonOpt, StoreOpt, cli_errors, emit, open_store, out


@cli_errors
def export(
    ref: Annotated[str, typer.Argument(help="version id, id prefix, or ref")],
    to: Annotated[Path, typer.Option("--to", help="target file (or new directory for hf)")],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="parquet, csv, tsv, jsonl, json or hf (default: from the suffix of --to; "
            "no suffix means hf)",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace an existing file (atomically)")
    ] = False,
    no_escape_formulas: Annotated[
        bool,
        typer.Option(
            "--no-escape-formulas",
            help="CSV/TSV: keep cells starting with = + - @ tab CR as they are",
        ),
    ] = False,
    store: StoreOpt = DEFAULT_STORE,
    as_json: JsonOpt = False,
) -> None:
    """Write a version out as Parquet, CSV, TSV, JSONL, JSON or a Hugging Face datasets directory.

    Never deletes or replaces a directory; an existing file only with --overwrite; never
    into the store or over a pipeline's source.
    """
    from tamis.pipelines.export import describe, export_version

    data = export_version(
        open_store(store),
        ref,
        to,
        fmt,
        overwrite=overwrite,
        escape_formulas=not no_escape_formulas,
    )
    emit(data, as_json, lambda: out.print(describe(data), soft_wrap=True, highlight=False))
