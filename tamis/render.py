"""Rich rendering of reports for people: scalars as a key/value table, record lists as tables.

A privacy ledger (a dict with `mechanisms` and `accountant`) is shown as its own table with every
mechanism, never cut: the row a reader misses could be the one that carries the budget. Other
record lists show their first rows and say how many are hidden and how to see them all.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table

# report keys and values are user text (column names, labels): printed literally, never as markup
out = Console(markup=False)

#: rows of a record list shown before the rest is summarised (ledgers are always shown whole)
MAX_ROWS = 20


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, default=str)
        return text if len(text) < 120 else text[:117] + "..."
    return str(value)


def is_ledger(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("mechanisms"), list)
        and "accountant" in value
    )


def _num(value: Any, spec: str = ".4g") -> str:
    return format(value, spec) if isinstance(value, (int, float)) else fmt(value)


def render_ledger(ledger: dict[str, Any], title: str = "privacy ledger") -> None:
    """Every mechanism of a privacy ledger, one row each, and the composed total."""
    rows = ledger.get("mechanisms") or []
    total = ledger.get("total") or {}
    t = Table(title=f"{title} ({len(rows)} mechanisms, all shown)")
    t.add_column("mechanism", no_wrap=True, style="bold")
    for c in ("kind", "noise", "q", "steps", "delta extra", "eps alone"):
        t.add_column(c, justify="left" if c == "kind" else "right")
    for m in rows:
        t.add_row(
            str(m.get("name")),
            str(m.get("kind", "")).replace("subsampled_gaussian", "subsampled"),
            _num(m.get("noise_multiplier")),
            _num(m.get("sample_rate")),
            _num(m.get("steps"), ","),
            _num(m.get("delta_extra"), ".3g"),
            _num(m.get("epsilon_alone")),
        )
    if total:
        t.caption = (
            f"composed epsilon {_num(total.get('epsilon'))}, delta {_num(total.get('delta'), '.3g')}"
            f" ({str(ledger.get('accountant', '')).upper()} accountant, all mechanisms jointly);"
            f" target epsilon {_num(total.get('target_epsilon'))}:"
            f" {'within' if total.get('within_target') else 'EXCEEDED'}"
        )
    out.print(t)


def render_report(report: dict[str, Any], title: str = "report") -> None:
    """Scalars as a key/value table; lists of records as their own tables (first rows, with the
    number hidden); privacy ledgers whole."""
    scalars = Table(title=title, show_header=False)
    scalars.add_column("key", style="bold")
    scalars.add_column("value")
    tables: list[tuple[str, list[dict[str, Any]]]] = []
    ledgers: list[tuple[str, dict[str, Any]]] = []

    def walk(prefix: str, value: Any) -> None:
        if is_ledger(value):
            ledgers.append((prefix, value))
        elif isinstance(value, dict) and value and len(value) <= 40:
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            tables.append((prefix, value))
        else:
            scalars.add_row(prefix, fmt(value))

    walk("", report)
    if scalars.row_count:
        out.print(scalars)
    for name, ledger in ledgers:
        render_ledger(ledger, name or "privacy ledger")
    for name, rows in tables:
        shown = rows[:MAX_ROWS]
        cols = list(dict.fromkeys(k for r in shown for k in r))
        t = Table(title=f"{name} ({len(rows)} rows)")
        for c in cols:
            t.add_column(c)
        for r in shown:
            t.add_row(*[fmt(r.get(c, "")) for c in cols])
        if len(rows) > len(shown):
            t.caption = (
                f"showing {len(shown)} of {len(rows)} rows; {len(rows) - len(shown)} hidden"
                " (--json prints them all)"
            )
        out.print(t)
