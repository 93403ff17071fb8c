"""The one column check of the annotation capabilities: every missing column is a clear error."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from tamis.errors import DataError


def require_columns(
    frame: pl.DataFrame,
    roles: Mapping[str, str | None],
    *,
    what: str = "the data",
    field: str | None = None,
    fix: str | None = None,
) -> None:
    """Raise a DataError naming the first column of `roles` (role -> column) not in `frame`.

    The error lists the frame's columns; `fix` defaults to "set `<role>` to the column holding
    the <role>". Roles whose column is None are skipped.
    """
    for role, col in roles.items():
        if col is not None and col not in frame.columns:
            raise DataError(
                f"{role} column '{col}' is not in {what} (columns: {', '.join(frame.columns[:20])})",
                column=col,
                field=field,
                fix=fix or f"set `{role}` to the column holding the {role}",
            )
