"""`tamis diff A B`: schema changes first, then rows compared as whole rows or matched by a key.

- Schema: columns only in A (`removed`), only in B (`added`), with another dtype (`retyped`), and
  names that differ only in case, spaces or `-`/`_` (`possibly_renamed`). `schema_changed` says
  whether any of these exist; the row figures below are then over the common columns only, and
  the CLI says so before it prints any row figure.
- Whole rows (always): each row's identity is a hash over all common columns (retyped columns
  compared as text, so `39` and `"39"` match), compared as multisets: a duplicate removed by dedup
  counts as one removed row, a row whose value changed counts as one removed and one added.
- By key (`key=[cols]`): rows are matched on the key columns; for rows whose key occurs once on
  each side, every other common column is compared (null equals null) and the number of rows that
  changed in each column is given with a few examples (sorted by key, so never by row order).
  Keys only on one side, null keys, and keys repeated on either side (which cannot be matched one
  to one) are counted apart.
"""

from __future__ import annotations

import re
from typing import Any

import polars as pl

from tamis.errors import TamisError
from tamis.pipelines.store import Store

_H = "__tamis_row_hash"


def _comparable(col: str, dtype: pl.DataType, retyped: bool) -> pl.Expr:
    """An expression whose hash identifies a value of `col` across both sides."""
    expr = pl.col(col)
    if isinstance(dtype, (pl.Categorical, pl.Enum)):
        return expr.cast(pl.String)
    if retyped and not dtype.is_nested():
        return expr.cast(pl.String)
    return expr


def _loose(name: str) -> str:
    return re.sub(r"[\s\-_]+", "_", name.strip().casefold())


def diff_versions(
    store: Store,
    a: str,
    b: str,
    examples: int = 5,
    key: list[str] | None = None,
) -> dict[str, Any]:
    ida, idb = store.resolve(a), store.resolve(b)
    ma, mb = store.manifest_by_id(ida), store.manifest_by_id(idb)
    la, lb = store.scan(ida), store.scan(idb)
    sa, sb = dict(la.collect_schema()), dict(lb.collect_schema())
    common = [c for c in sa if c in sb]
    retyped = {c for c in common if sa[c] != sb[c]}
    added = [c for c in sb if c not in sa]
    removed = [c for c in sa if c not in sb]
    renamed = [
        {"from": r, "to": n} for r in removed for n in added if r != n and _loose(r) == _loose(n)
    ]
    schema_changed = bool(added or removed or retyped)
    out: dict[str, Any] = {
        "a": {"id": ida, "name": ma.get("name"), "rows": ma["rows"], "columns": len(sa)},
        "b": {"id": idb, "name": mb.get("name"), "rows": mb["rows"], "columns": len(sb)},
        "schema": {
            "added": [{"name": c, "dtype": str(sb[c])} for c in added],
            "removed": [{"name": c, "dtype": str(sa[c])} for c in removed],
            "retyped": [
                {"name": c, "from": str(sa[c]), "to": str(sb[c])} for c in common if c in retyped
            ],
            "possibly_renamed": renamed,
        },
        "schema_changed": schema_changed,
        "rows_delta": mb["rows"] - ma["rows"],
        "compared_columns": common,
        "comparison": "whole rows over the common columns, as multisets",
    }
    key = list(dict.fromkeys(key)) if key else None  # `--key a,a` is the key `a`
    if key:
        missing = [c for c in key if c not in common]
        if missing:
            where = " and ".join(
                side
                for side, schema in (("A", sa), ("B", sb))
                if any(c not in schema for c in missing)
            )
            raise TamisError(
                f"key column(s) {', '.join(repr(c) for c in missing)} not in {where}",
                field="--key",
                fix=f"key columns must be in both versions; common columns: {', '.join(common) or '(none)'}",
            )
    if ida == idb:
        out.update(rows_added=0, rows_removed=0, rows_unchanged=ma["rows"], identical=True)
        if key:
            out["key"] = _by_key(la, lb, key, common, sa, sb, retyped, examples)
        return out
    if not common:
        out.update(
            rows_added=mb["rows"],
            rows_removed=ma["rows"],
            rows_unchanged=0,
            identical=False,
            comparison="no column in common: no row of B can equal a row of A",
        )
        return out

    def row_hash(schema: dict[str, pl.DataType]) -> pl.Expr:
        exprs = [_comparable(c, schema[c], c in retyped).hash(seed=0).alias(c) for c in common]
        return pl.struct(exprs).hash(seed=0).alias(_H)

    ha, hb = la.select(row_hash(sa)), lb.select(row_hash(sb))
    ca = ha.group_by(_H).agg(pl.len().cast(pl.Int64).alias("na"))
    cb = hb.group_by(_H).agg(pl.len().cast(pl.Int64).alias("nb"))
    joined = (
        ca.join(cb, on=_H, how="full", coalesce=True)
        .with_columns(pl.col("na").fill_null(0), pl.col("nb").fill_null(0))
        .collect()
    )
    counts = joined.select(
        (pl.col("nb") - pl.col("na")).clip(lower_bound=0).sum().alias("added"),
        (pl.col("na") - pl.col("nb")).clip(lower_bound=0).sum().alias("removed"),
        pl.min_horizontal("na", "nb").sum().alias("unchanged"),
    ).row(0, named=True)

    def sample(lf: pl.LazyFrame, schema: dict[str, pl.DataType], more: str) -> list[Any]:
        which = joined.lazy().filter(pl.col(more) > pl.col("nb" if more == "na" else "na"))
        rows = lf.select([*common, row_hash(schema)]).join(which.select(_H), on=_H, how="semi")
        # sorted by row hash: the examples do not depend on row order
        return rows.sort(_H).head(examples).drop(_H).collect().to_dicts()

    out.update(
        rows_added=int(counts["added"] or 0),
        rows_removed=int(counts["removed"] or 0),
        rows_unchanged=int(counts["unchanged"] or 0),
        identical=False,
        examples_added=sample(lb, sb, "nb"),
        examples_removed=sample(la, sa, "na"),
    )
    if key:
        out["key"] = _by_key(la, lb, key, common, sa, sb, retyped, examples)
    return out


def _by_key(
    la: pl.LazyFrame,
    lb: pl.LazyFrame,
    key: list[str],
    common: list[str],
    sa: dict[str, pl.DataType],
    sb: dict[str, pl.DataType],
    retyped: set[str],
    examples: int,
) -> dict[str, Any]:
    """Match rows on `key`; count per column the matched rows whose value changed.

    Columns get positional internal names (`__k0`, `__v3_a`...), so no user column name can clash
    with them or with each other."""
    values = [c for c in common if c not in key]
    kn = [f"__k{j}" for j in range(len(key))]

    def side(lf: pl.LazyFrame, schema: dict[str, pl.DataType], tag: str) -> pl.DataFrame:
        keys = [_comparable(k, schema[k], k in retyped).alias(kn[j]) for j, k in enumerate(key)]
        cols = [pl.col(c).alias(f"__v{i}_{tag}") for i, c in enumerate(values)]
        frame = lf.select([*keys, *cols]).collect()
        return frame.with_columns(
            pl.len().over(kn).alias(f"__n_{tag}"),
            pl.any_horizontal([pl.col(k).is_null() for k in kn]).alias(f"__null_{tag}"),
        )

    fa, fb = side(la, sa, "a"), side(lb, sb, "b")
    null_a, null_b = int(fa["__null_a"].sum()), int(fb["__null_b"].sum())
    fa, fb = fa.filter(~pl.col("__null_a")), fb.filter(~pl.col("__null_b"))
    keys_a, keys_b = fa.select(kn).unique(), fb.select(kn).unique()
    only_a = fa.join(keys_b, on=kn, how="anti").height
    only_b = fb.join(keys_a, on=kn, how="anti").height
    ua, ub = fa.filter(pl.col("__n_a") == 1), fb.filter(pl.col("__n_b") == 1)
    matched = ua.join(ub, on=kn, how="inner")
    shared_a = fa.join(keys_b, on=kn, how="semi").height
    shared_b = fb.join(keys_a, on=kn, how="semi").height
    changed: dict[str, int] = {}
    shown: dict[str, list[dict[str, Any]]] = {}
    flags = []
    for i, c in enumerate(values):
        left, right = pl.col(f"__v{i}_a"), pl.col(f"__v{i}_b")
        if c in retyped:
            if sa[c].is_nested() or sb[c].is_nested():
                left, right = left.hash(seed=0), right.hash(seed=0)
            else:
                left, right = left.cast(pl.String), right.cast(pl.String)
        flags.append(left.ne_missing(right).alias(f"__chg{i}"))
    marked = matched.with_columns(flags) if flags else matched
    for i, c in enumerate(values):
        diff_rows = marked.filter(pl.col(f"__chg{i}"))
        changed[c] = diff_rows.height
        if diff_rows.height:
            head = diff_rows.sort(kn, nulls_last=True).head(examples)
            shown[c] = [
                {
                    **{k: r[kn[j]] for j, k in enumerate(key)},
                    "a": r[f"__v{i}_a"],
                    "b": r[f"__v{i}_b"],
                }
                for r in head.iter_rows(named=True)
            ]
    rows_changed = (
        marked.filter(pl.any_horizontal([pl.col(f"__chg{i}") for i in range(len(values))])).height
        if values
        else 0
    )
    return {
        "columns": key,
        "rows_matched": matched.height,
        "rows_changed": rows_changed,
        "rows_same": matched.height - rows_changed,
        "rows_only_in_a": only_a,
        "rows_only_in_b": only_b,
        "null_key_rows_a": null_a,
        "null_key_rows_b": null_b,
        "repeated_key_rows_a": shared_a - matched.height,
        "repeated_key_rows_b": shared_b - matched.height,
        "columns_changed": {c: n for c, n in changed.items() if n},
        "columns_compared": values,
        "examples": shown,
    }
