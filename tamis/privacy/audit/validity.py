"""Validity of synthetic values: out of range, new categories, null-rate change, per column.

For every audited column:

- numbers and dates/times (`kind: range`): `out_of_range_share`, the share of the synthetic
  column's non-null values outside [low, high], where [low, high] is the column's public bounds
  when given (e.g. a `dp_ctgan` step's `columns: {age: {bounds: [17, 90]}}`), else the real data's
  min and max. A synthetic value that is not a number at all (text in a numeric column) counts as
  out of range. NaN counts as missing.
- everything else (`kind: domain`): `new_category_share`, the share of the synthetic column's
  non-null values that are not in the domain (the public categories when given, else the values
  seen in the real data, compared as text); `new_categories` lists a few of them (most frequent
  first) and `n_new_categories` counts the distinct ones, e.g. DP-CTGAN's `(other)` placeholder.
- `null_rate_change`: synthetic null rate minus real null rate (positive: more missing values).

The summary figures (`max_out_of_range_share`, `max_new_category_share`,
`max_null_rate_increase`) are what a release gate usually thresholds; per-column figures are in the
gate's metrics too, as `validity.<column>.<figure>`.
"""

from __future__ import annotations

from typing import Any

import polars as pl

#: how many new categories are listed per column
EXAMPLES = 5


def _is_range(dtype: pl.DataType) -> bool:
    return (dtype.is_numeric() and dtype != pl.Boolean) or dtype.is_temporal()


def _missing(s: pl.Series) -> pl.Series:
    """Null, or NaN for floats."""
    if s.dtype.is_float():
        return s.is_null() | s.is_nan().fill_null(False)
    return s.is_null()


def _as_number(s: pl.Series, like: pl.DataType) -> pl.Series:
    """`s` as Float64 on the scale of a column of type `like` (dates: the real column's
    physical unit); values that are not numbers (or dates) become null."""
    if isinstance(s.dtype, (pl.Categorical, pl.Enum)) or s.dtype == pl.Object:
        s = s.cast(pl.Utf8)
    if s.dtype == pl.Utf8:
        s = s.str.strip_chars()
    try:
        if like.is_temporal():
            if s.dtype == pl.Utf8 and like == pl.Date:
                s = s.str.to_date(strict=False)
            elif s.dtype == pl.Utf8 and isinstance(like, pl.Datetime):
                s = s.str.to_datetime(strict=False)
            return s.cast(like, strict=False).to_physical().cast(pl.Float64)
        return s.cast(pl.Float64, strict=False)
    except pl.exceptions.PolarsError:
        # a type Polars cannot cast at all: each value through its text
        return s.cast(pl.Utf8).cast(pl.Float64, strict=False)


def _usable(low: float, high: float) -> bool:
    """A usable range (the real column may be all null: then every value is out of range)."""
    return low == low and high == high


def public_metadata(manifest: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Public bounds/categories per column from a synthetic version's manifest, if any.

    Read from the step's params (`columns: {c: {bounds, categories}}`, as `dp_ctgan` takes them)
    and from a report's `public_metadata` (`{columns: {...}}`), the latter winning.
    """
    if not manifest:
        return {}
    out: dict[str, dict[str, Any]] = {}
    sources = [
        ((manifest.get("step") or {}).get("params") or {}).get("columns"),
        ((manifest.get("report") or {}).get("public_metadata") or {}).get("columns"),
    ]
    for cols in sources:
        if not isinstance(cols, dict):
            continue
        for col, meta in cols.items():
            if not isinstance(meta, dict):
                continue
            keep = {k: meta[k] for k in ("bounds", "categories") if meta.get(k) is not None}
            if keep:
                out.setdefault(str(col), {}).update(keep)
    return out


def validity(
    real: pl.DataFrame,
    synthetic: pl.DataFrame,
    public: dict[str, dict[str, Any]] | None = None,
    columns: list[str] | None = None,
) -> dict[str, Any]:
    """Per-column validity of `synthetic` against the public or real range/domain (see above).

    `synthetic` is read as given (before any cast to the real types), so text in a numeric
    column is seen as invalid rather than as a missing value.
    """
    public = public or {}
    cols = columns or real.columns
    per: dict[str, dict[str, Any]] = {}
    for col in cols:
        r = real[col]
        s = (
            synthetic[col]
            if col in synthetic.columns
            else pl.Series(col, [None] * synthetic.height)
        )
        real_null = float(_missing(r).sum() / max(r.len(), 1))
        syn_null = float(_missing(s).sum() / max(s.len(), 1))
        meta = public.get(col, {})
        entry: dict[str, Any] = {}
        if _is_range(r.dtype) and "categories" not in meta:
            present = s.filter(~_missing(s))
            x = _as_number(present, r.dtype)
            not_number = int(x.is_null().sum()) + int(x.is_nan().fill_null(False).sum())
            if meta.get("bounds") is not None:
                low, high = (float(v) for v in meta["bounds"])
                source = "public"
            else:
                rv = _as_number(r.filter(~_missing(r)), r.dtype)
                low = float(rv.min()) if rv.len() else float("nan")  # type: ignore[arg-type]
                high = float(rv.max()) if rv.len() else float("nan")  # type: ignore[arg-type]
                source = "real"
            xv = x.drop_nulls().drop_nans()
            outside = int(((xv < low) | (xv > high)).sum()) if _usable(low, high) else xv.len()
            n = present.len()
            entry = {
                "kind": "range",
                "source": source,
                "low": low,
                "high": high,
                "n": n,
                "n_out_of_range": outside + not_number,
                "n_not_a_number": not_number,
                "out_of_range_share": float((outside + not_number) / n) if n else 0.0,
            }
        else:
            if meta.get("categories") is not None:
                domain = {str(v) for v in meta["categories"]}
                source = "public"
            else:
                domain = set(r.drop_nulls().cast(pl.Utf8).to_list())
                source = "real"
            present = s.filter(~_missing(s))
            if r.dtype == pl.Boolean and present.dtype.is_numeric():
                # 1/0 are true/false; any other number is not in the domain
                as_bool = {1.0: "true", 0.0: "false"}
                text = pl.Series(
                    col,
                    [as_bool.get(float(v), str(v)) for v in present.to_list()],
                    dtype=pl.Utf8,
                )
            else:
                text = present.cast(pl.Utf8)
            n = text.len()
            new = text.filter(~text.is_in(list(domain)))
            counts = (
                new.value_counts(name="n").sort(["n", new.name], descending=[True, False])
                if new.len()
                else None
            )
            entry = {
                "kind": "domain",
                "source": source,
                "domain_size": len(domain),
                "n": n,
                "n_new": int(new.len()),
                "new_category_share": float(new.len() / n) if n else 0.0,
                "n_new_categories": int(counts.height) if counts is not None else 0,
                "new_categories": (
                    [str(v) for v in counts[new.name].head(EXAMPLES).to_list()]
                    if counts is not None
                    else []
                ),
            }
        entry.update(
            real_null_rate=real_null,
            synthetic_null_rate=syn_null,
            null_rate_change=syn_null - real_null,
        )
        per[col] = entry
    ranges = [e["out_of_range_share"] for e in per.values() if e["kind"] == "range"]
    domains = [e["new_category_share"] for e in per.values() if e["kind"] == "domain"]
    return {
        "max_out_of_range_share": max(ranges, default=0.0),
        "max_new_category_share": max(domains, default=0.0),
        "max_null_rate_increase": max([0.0, *(e["null_rate_change"] for e in per.values())]),
        "columns_out_of_range": sum(1 for v in ranges if v > 0),
        "columns_with_new_categories": sum(1 for v in domains if v > 0),
        "public_columns": sorted(c for c in per if per[c]["source"] == "public"),
        "columns": per,
    }
