"""`tamis diff A B`: schema changes, row counts, and rows added/removed by row hash."""

from __future__ import annotations

from typing import Any

import polars as pl

from tamis.pipelines.store import Store


def diff_versions(store: Store, a: str, b: str, examples: int = 5) -> dict[str, Any]:
    ida, idb = store.resolve(a), store.resolve(b)
    ma, mb = store.manifest_by_id(ida), store.manifest_by_id(idb)
    sa = {c["name"]: c["dtype"] for c in ma["schema"]}
    sb = {c["name"]: c["dtype"] for c in mb["schema"]}
    common = [c for c in sa if c in sb]
    out: dict[str, Any] = {
        "a": {"id": ida, "name": ma.get("name"), "rows": ma["rows"]},
        "b": {"id": idb, "name": mb.get("name"), "rows": mb["rows"]},
        "schema": {
            "added": [{"name": c, "dtype": sb[c]} for c in sb if c not in sa],
            "removed": [{"name": c, "dtype": sa[c]} for c in sa if c not in sb],
            "retyped": [{"name": c, "from": sa[c], "to": sb[c]} for c in common if sa[c] != sb[c]],
        },
        "rows_delta": mb["rows"] - ma["rows"],
        "compared_columns": common,
    }
    if ida == idb:
        out.update(rows_added=0, rows_removed=0, rows_unchanged=ma["rows"], identical=True)
        return out
    if not common:
        out.update(
            rows_added=mb["rows"], rows_removed=ma["rows"], rows_unchanged=0, identical=False
        )
        return out

    # Row identity = hash of the common columns (cast to string so retyped columns compare by
    # value); multiset semantics, so a duplicate removed by dedup counts as one removed row.
    def hashed(ref_id: str) -> pl.LazyFrame:
        lf = store.scan(ref_id).select([pl.col(c).cast(pl.String) for c in common])
        return lf.with_columns(pl.struct(common).hash(seed=0).alias("__h"))

    ha, hb = hashed(ida), hashed(idb)
    ca = ha.group_by("__h").agg(pl.len().cast(pl.Int64).alias("na"))
    cb = hb.group_by("__h").agg(pl.len().cast(pl.Int64).alias("nb"))
    joined = ca.join(cb, on="__h", how="full", coalesce=True).with_columns(
        pl.col("na").fill_null(0), pl.col("nb").fill_null(0)
    )
    counts = (
        joined.select(
            (pl.col("nb") - pl.col("na")).clip(lower_bound=0).sum().alias("added"),
            (pl.col("na") - pl.col("nb")).clip(lower_bound=0).sum().alias("removed"),
            pl.min_horizontal("na", "nb").sum().alias("unchanged"),
        )
        .collect()
        .row(0, named=True)
    )
    added_h = joined.filter(pl.col("nb") > pl.col("na")).select("__h")
    removed_h = joined.filter(pl.col("na") > pl.col("nb")).select("__h")
    ex_added = hb.join(added_h, on="__h", how="semi").drop("__h").head(examples).collect()
    ex_removed = ha.join(removed_h, on="__h", how="semi").drop("__h").head(examples).collect()
    out.update(
        rows_added=int(counts["added"] or 0),
        rows_removed=int(counts["removed"] or 0),
        rows_unchanged=int(counts["unchanged"] or 0),
        identical=False,
        examples_added=ex_added.to_dicts(),
        examples_removed=ex_removed.to_dicts(),
    )
    return out
