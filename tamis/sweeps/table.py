"""The sweep summary as a rich table (what `tamis sweep` and `tamis show SWEEP` print), and the
per-version facts (rows, class balance, steps) shared with the HTML report."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tamis.sweeps.documents import SweepResult

DASH = "—"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return DASH
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def fmt_p(p: Any) -> str:
    if p is None:
        return DASH
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_ci(low: Any, high: Any, digits: int = 3, signed: bool = False) -> str:
    if low is None or high is None:
        return DASH
    f = f"+.{digits}f" if signed else f".{digits}f"
    return f"[{low:{f}}, {high:{f}}]"


def rows_text(info: dict[str, Any]) -> str:
    rows = info.get("rows")
    if not rows:
        return DASH
    if rows["min"] == rows["max"]:
        return f"{rows['min']:,}"
    return f"{rows['min']:,}-{rows['max']:,} (mean {rows['mean']:,.0f})"


def balance_text(info: dict[str, Any]) -> str:
    """Share of each class in the training rows (summed over seeds); the positive class first
    for two classes, min-max for many."""
    bal: dict[str, float] = info.get("class_balance") or {}
    if not bal:
        return DASH
    pos = info.get("positive")
    if len(bal) <= 3:
        order = sorted(bal, key=lambda c: (c != pos, c))
        return ", ".join(f"{c}{' (pos)' if c == pos else ''}: {bal[c]:.1%}" for c in order)
    return f"{len(bal)} classes, {min(bal.values()):.1%}-{max(bal.values()):.1%} each"


def steps_text(info: dict[str, Any]) -> str:
    steps = info.get("steps") or []
    return " → ".join(steps) if steps else DASH


def nulls_text(info: dict[str, Any]) -> str:
    nulls = info.get("null_labels_dropped")
    if not nulls:
        return DASH
    return f"train {nulls.get('train', 0):,}, test {nulls.get('test', 0):,}"


def version_rows(result: SweepResult) -> list[dict[str, str]]:
    """One row per version: its rows, class balance, null labels dropped, chain of steps."""
    out = []
    for name, info in (result.get("versions") or {}).items():
        out.append(
            {
                "version": name + (" (baseline)" if name == result.get("baseline") else ""),
                "rows": rows_text(info),
                "class balance": balance_text(info),
                "null labels dropped": nulls_text(info),
                "steps": steps_text(info),
            }
        )
    return out


def _version_cell(result: SweepResult, version: str) -> str:
    info = (result.get("versions") or {}).get(version) or {}
    lines = [f"[bold]{version}[/]"]
    if info.get("rows"):
        lines.append(f"{rows_text(info)} rows")
    if info.get("class_balance"):
        lines.append(balance_text(info))
    if info.get("steps"):
        lines.append(steps_text(info))
    nulls = info.get("null_labels_dropped") or {}
    if nulls.get("train") or nulls.get("test"):
        lines.append(f"[yellow]null labels dropped: {nulls_text(info)}[/]")
    return "\n".join(lines)


def render_sweep_table(result: SweepResult, digits: int = 3) -> Any:
    """A rich Table: per version (rows, class balance, steps) and metric: mean, 95% CI, delta
    vs the baseline with its 95% CI and p-value. Everything else is in `--json` and the HTML."""
    from rich.markup import escape
    from rich.table import Table

    seeds = result["seeds"]
    methods = sorted({r.get("ci_method") or "" for r in result["table"]} - {""})
    table = Table(
        title=f"sweep {escape(result['name'])} ({result['sweep_id'][:12]}): "
        f"{result['recipe']['use']}, {len(seeds)} seeds, delta vs {escape(str(result['baseline']))}",
        caption="95% CIs and p-values: "
        + "; ".join(
            "paired bootstrap resampling test rows and seeds together"
            if m.startswith("bootstrap")
            else "Student t over seeds (figures without per-row predictions)"
            for m in methods
        ),
    )
    table.add_column("version", justify="left", min_width=12, max_width=36, overflow="fold")
    table.add_column("metric", justify="left", min_width=17, no_wrap=True)
    for col in ("mean", "95% CI", "delta", "delta 95% CI", "p"):
        table.add_column(col, justify="right", no_wrap=col != "delta 95% CI")
    rows = result["table"]
    for i, row in enumerate(rows):
        first = i == 0 or rows[i - 1]["version"] != row["version"]
        last = i == len(rows) - 1 or rows[i + 1]["version"] != row["version"]
        delta = row.get("delta")
        table.add_row(
            _version_cell(result, row["version"]) if first else "",
            row["metric"] if row.get("n", 0) == len(seeds) else f"{row['metric']} (n={row['n']})",
            fmt(row.get("mean"), digits),
            fmt_ci(row.get("ci_low"), row.get("ci_high"), digits),
            DASH if delta is None else f"{delta:+.{digits}f}",
            fmt_ci(row.get("delta_ci_low"), row.get("delta_ci_high"), digits, signed=True),
            fmt_p(row.get("p")),
            end_section=last and i != len(rows) - 1,
        )
    return table
