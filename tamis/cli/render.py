"""Shared formatting for every `tamis` command: consoles, the --store/--json options, `emit`
(one JSON document with --json, else a rendering for people), and `cli_errors` (errors -> one clear
message and an exit code, never a traceback).

Conventions: `--json` prints exactly one JSON document on stdout (logs and progress go to stderr);
exit 0 success, 1 error (the message names the file/step/field and the fix), 2 usage, 3 a gate
failed.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape as escape
from rich.table import Table as Table

from tamis.errors import GateFailed, TamisError
from tamis.render import fmt as fmt

out = Console()
err = Console(stderr=True)

StoreOpt = Annotated[
    Path,
    typer.Option("--store", envvar="TAMIS_STORE", help="store directory (or TAMIS_STORE)"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="print one JSON document on stdout")]
store_option = StoreOpt
json_option = JsonOpt
DEFAULT_STORE = Path(".tamis")

F = TypeVar("F", bound=Callable[..., Any])


def emit(data: Any, as_json: bool, render: Callable[[], None] | None = None) -> None:
    """Print `data` as one JSON document (with --json) or call `render` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    elif render is not None:
        render()
    else:
        out.print_json(json.dumps(data, default=str))


def missing_file(what: str, ref: str) -> TamisError:
    """The error for a DATA argument that names no file (`tamis.pipelines.data.missing_file`)."""
    from tamis.pipelines.data import missing_file as error

    return error(what, ref)


def check_store_path(path: Any) -> None:
    """A --store that names an existing file (not a directory) is an error, before any work."""
    if isinstance(path, Path) and path.exists() and not path.is_dir():
        raise TamisError(
            "--store names a file, not a store directory",
            file=str(path),
            field="--store",
            fix="pass a directory (it is created if missing), e.g. --store .tamis",
        )


def _unexpected(exc: Exception) -> TamisError:
    """An exception tamis did not turn into a TamisError: a clear message, never a traceback."""
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename is not None else None
        return TamisError(
            exc.strerror or str(exc),
            file=str(where) if where is not None else None,
            fix="check the path, that its parent directories exist and are directories, and "
            "its permissions",
        )
    return TamisError(
        f"unexpected {type(exc).__name__}: {str(exc)[:1500]}",
        fix="this input is not handled; please report it (TAMIS_DEBUG=1 shows the traceback)",
    )


def cli_errors(fn: F) -> F:
    """Turn errors into one clear message (and a JSON error document with --json), never a
    traceback: TamisError as it is; any other exception as an `unexpected` error (exit 1), unless
    TAMIS_DEBUG=1. User text is printed escaped: `[...]` in a message is never read as markup."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_store_path(kwargs.get("store"))
            return fn(*args, **kwargs)
        except (typer.Exit, click.exceptions.ClickException, click.exceptions.Abort):
            raise
        except Exception as raw:
            if isinstance(raw, TamisError):
                exc = raw
            elif os.environ.get("TAMIS_DEBUG"):
                raise
            else:
                exc = _unexpected(raw)
            if kwargs.get("as_json"):
                sys.stdout.write(json.dumps(exc.to_json(), indent=2, default=str) + "\n")
            err.print(
                f"[bold red]error:[/] {escape(exc.render())}", highlight=False, soft_wrap=True
            )
            if isinstance(exc, GateFailed):
                for check in exc.failed:
                    name = escape(str(check.get("name", check)))
                    err.print(f"  [red]failed:[/] {name}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def open_store(path: Path) -> Any:
    from tamis.pipelines.store import Store

    return Store(path)
