"""The sweep summary as a rich table (what `tamis sweep` and `tamis show SWEEP` print)."""

from __future__ import annotations

from typing import Any


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _fmt_p(p: Any) -> str:
    if p is None:
        return "-"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def render_sweep_table(result: dict[str, Any], digits: int = 3) -> Any:
    """A rich Table: version x metric with mean, 95% CI, delta vs baseline and p-values.

    The sd, the delta's CI and the bootstrap CI are in the JSON (`--json`) and the HTML report.
    """
    from rich.table import Table

    seeds = result["seeds"]
    table = Table(
        title=f"sweep {result['name']} ({result['sweep_id'][:12]}): {result['recipe']['use']}, "
        f"{len(seeds)} seeds, delta vs {result['baseline']}",
        caption="mean and 95% t-CI across seeds; delta paired by seed (t-test, bootstrap)",
    )
    for col in ("version", "metric", "mean", "95% CI", "delta", "p t", "p boot"):
        table.add_column(col, justify="left" if col in ("version", "metric") else "right")
    last = None
    for row in result["table"]:
        ci = (
            f"{_fmt(row['ci_low'], digits)}-{_fmt(row['ci_high'], digits)}"
            if row.get("ci_low") is not None
            else "-"
        )
        delta = row.get("delta")
        table.add_row(
            row["version"] if row["version"] != last else "",
            row["metric"] if row.get("n", 0) == len(seeds) else f"{row['metric']} (n={row['n']})",
            _fmt(row["mean"], digits),
            ci,
            "-" if delta is None else f"{delta:+.{digits}f}",
            _fmt_p(row.get("p_ttest")),
            _fmt_p(row.get("p_bootstrap")),
            end_section=row is not result["table"][-1]
            and result["table"][result["table"].index(row) + 1]["version"] != row["version"],
        )
        last = row["version"]
    return table
