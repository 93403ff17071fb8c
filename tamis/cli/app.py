"""The `tamis` command line: typer + rich. Formatting only; the work happens in `tamis.pipelines`.

Conventions: `--json` prints exactly one JSON document on stdout (logs and progress go to stderr);
exit 0 success, 1 error (the message names the file/step/field and the fix), 2 usage, 3 a gate
failed. One module per command group; every command is registered explicitly below (in the order
`tamis --help` lists them); shared formatting (tables, --json, errors -> exit codes) is in
`tamis.cli.render`.
"""

from __future__ import annotations

from typing import Annotated

import typer

import tamis
from tamis.cli import (
    annotate,
    audit,
    build,
    diff,
    export,
    steps,
    store,
    sweep,
    train,
    validate,
    versions,
)
from tamis.cli.render import out

app = typer.Typer(
    name="tamis",
    help="tamis: build curated, versioned, audited datasets and measure what curation does.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="print the version and exit")] = False,
) -> None:
    if version:
        out.print(f"tamis {tamis.__version__}")
        raise typer.Exit(0)


#: the commands, in the order `tamis --help` lists them
COMMANDS = (
    build.build,
    versions.versions,
    versions.show,
    versions.lineage,
    diff.diff,
    export.export,
    steps.steps,
    build.demo,
)
#: the modules that add their commands or sub-commands themselves (`register(app)`)
GROUPS = (annotate, audit, store, sweep, train, validate)

for _command in COMMANDS:
    app.command()(_command)
for _group in GROUPS:
    _group.register(app)
