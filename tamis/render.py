"""Rich rendering of reports for people: scalars as a key/value table, record lists as tables."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) < 120 else text[:117] + "..."
    return str(value)


def render_report(report: dict[str, Any], title: str = "report") -> None:
    """Scalars as a key/value table; lists of records as their own tables (first 20 rows)."""
    scalars = Table(title=title, show_header=False)
    scalars.add_column("key", style="bold")
    scalars.add_column("value")
    tables: list[tuple[str, list[dict[str, Any]]]] = []

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and value and len(value) <= 40:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((prefix, value))
        else:
            scalars.add_row(prefix, fmt(value))

    walk("", report)
    if scalars.row_count:
        out.print(scalars)
    for name, rows in tables:
        cols = list(dict.fromkeys(k for r in rows[:20] for k in r))
        t = Table(title=f"{name} ({len(rows)} rows)")
        for c in cols:
            t.add_column(c)
        for r in rows[:20]:
            t.add_row(*[fmt(r.get(c, "")) for c in cols])
        out.print(t)
