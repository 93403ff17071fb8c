"""The `tamis` command line (typer + rich): formatting only; the work happens in `tamis.pipelines`.

`tamis.cli.app` is the typer app (the console script `tamis`); `tamis.cli.render` holds the shared
formatting; one module per command group.
"""

from tamis.cli.app import app
from tamis.cli.render import cli_errors

__all__ = ["app", "cli_errors"]
