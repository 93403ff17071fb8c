"""What the CSV source report warns about: a header row that looks like data, day and month
that could be swapped in sniffed dates, and blank lines."""

from __future__ import annotations

import gzip
import re
from pathlib import Path
from typing import Any

import polars as pl

_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$")
_DATE_RE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")


def date_format_warnings(
    columns: list[str],
    max_day: dict[str, int],
    info: dict[str, Any],
    sniffed: dict[str, Any],
    kw: dict[str, Any],
    path: Path,
) -> list[str]:
    """Record the sniffed date/timestamp formats; warn when day and month could be swapped.

    DuckDB picks `%d/%m/%Y` for `05/01/2024` when no value has a day above 12, where pandas and
    most US data read month first: the dates are then silently wrong for one reader or the other.
    """
    warns: list[str] = []
    for kind, key, option in (
        ("DATE", "DateFormat", "dateformat"),
        ("TIMESTAMP", "TimestampFormat", "timestampformat"),
    ):
        fmt = sniffed.get(key)
        cols = [c for c, t in info["types"].items() if t == kind and c in columns]
        if not fmt or not cols:
            continue
        info[option] = fmt
        # year-first formats (ISO 8601, 2024-01-05) are read year-month-day by everyone
        if option in kw or "%d" not in fmt or "%m" not in fmt or fmt.startswith(("%Y", "%y")):
            continue
        ambiguous = [c for c in cols if max_day.get(c) in range(1, 13)]
        if ambiguous:
            swapped = fmt.replace("%d", "\0").replace("%m", "%d").replace("\0", "%m")
            warns.append(
                f"{path.name}: column(s) {', '.join(repr(c) for c in ambiguous)} were read with "
                f"the sniffed {option} {fmt!r}, but no day is above 12, so {swapped!r} fits too "
                f"and would give other dates; fix: set `options: {{{option}: '{fmt}'}}` to "
                f"confirm, or `options: {{{option}: '{swapped}'}}`"
            )
    return warns


def count_blank_lines(path: Path) -> int | None:
    """Lines holding nothing but whitespace (the reader skips them); None if not countable."""
    suffix = path.suffix.lower()
    if suffix in (".zst", ".zstd", ".bz2", ".xz"):
        return None
    opener: Any = gzip.open if suffix == ".gz" else open
    blank = 0
    try:
        with opener(path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    blank += 1
    except OSError:
        return None
    return blank


def _shape(value: str) -> str:
    """A cell's character classes: 'Alice' -> 'Aa', '2019-01-02' -> '9-9-9', 'a b' -> 'a a'."""
    out = re.sub(r"[A-Z]+", "A", value.strip())
    out = re.sub(r"[a-z]+", "a", out)
    out = re.sub(r"[0-9]+", "9", out)
    return re.sub(r"\s+", " ", out)


def header_warnings(
    frame: pl.DataFrame, has_header: bool, header_from: str, named: bool
) -> list[str]:
    """Warn when the header row looks like data, or when there is none and columns got numbers."""
    if not has_header:
        if named or frame.width == 0 or header_from != "sniffed":
            return []  # named by `columns:`, or the user said there is no header
        return [
            f"no header row (the first line looks like data): columns are named "
            f"{frame.columns[0]}..{frame.columns[-1]}; fix: name them with `columns: [...]`, or "
            "set `header: true` if the first line holds names"
        ]
    if header_from != "sniffed":
        return []  # the user said there is a header
    names = frame.columns
    numeric = [c for c in names if _NUMBER_RE.match(c.strip()) or _DATE_RE.match(c.strip())]
    fix = (
        "if the first line is data, set `header: false` and name the columns with "
        "`columns: [...]`; if it is a header, set `header: true` to silence this"
    )
    if numeric:
        return [
            "the header row (sniffed) has cells that look like data, not names: "
            f"{', '.join(repr(c) for c in numeric[:5])}; fix: {fix}"
        ]
    if frame.height == 0:
        return []
    strings = [c for c, t in frame.schema.items() if t == pl.String]
    if len(strings) != frame.width:
        # a typed column whose first line did not parse as that type: a real header
        return []
    sample = frame.head(200)
    same = []
    for c in names:
        values = [v for v in sample[c].to_list() if v is not None]
        if not values:
            return []
        shapes = {_shape(v) for v in values}
        if c in values or _shape(c) in shapes:
            same.append(c)
    if len(same) == len(names):
        return [
            "the header row (sniffed) has the same shape as the rows below, so it may be data "
            f"(header: {', '.join(repr(c) for c in names[:5])}"
            f"{', ...' if len(names) > 5 else ''}); fix: {fix}"
        ]
    return []
