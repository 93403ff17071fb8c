"""Exact dedup: the adult.data bar (24 duplicates), normalisation, keep/action, lazy path, errors."""

from __future__ import annotations

import polars as pl
import pytest

from tamis.config import load_config
from tamis.curate.dedup import DedupConfig, exact_dedup
from tamis.errors import DataError, SpecError


def test_adult_duplicates_match_independent_polars_count(adult_train: pl.DataFrame) -> None:
    expected = adult_train.height - adult_train.unique().height  # independent count
    assert expected == 24
    out, report, clusters = exact_dedup(adult_train)
    assert report["duplicates"] == expected == 24
    assert report["rows_out"] == out.height == adult_train.unique().height
    assert report["rows_in"] == adult_train.height
    assert clusters["size"].sum() - clusters.height == 24
    # the surviving rows are exactly the distinct rows, in first-occurrence order
    assert out.equals(adult_train.unique(maintain_order=True))
    # the lazy (streaming) path agrees
    lazy_out, lazy_report, lazy_clusters = exact_dedup(adult_train.lazy())
    assert isinstance(lazy_out, pl.LazyFrame)
    assert lazy_out.collect().equals(out)
    assert lazy_report["duplicates"] == 24 and lazy_clusters.equals(clusters)


def test_normalisation_keep_and_flag() -> None:
    df = pl.DataFrame(
        {
            "name": [" Alice", "alice ", "ＡＬＩＣＥ", "Bob", "bob", "Carol", None, None],
            "score": [1.0000001, 1.0, 1.0, -0.0, 0.0, 2.0, float("nan"), float("nan")],
        }
    )
    _, exact_report, _ = exact_dedup(df)
    assert exact_report["duplicates"] == 1  # only the two null/NaN rows are byte-identical
    out, report, clusters = exact_dedup(df, DedupConfig(normalize=True, round_floats=3))
    assert report["duplicates"] == 4 and report["clusters"] == 3
    assert out["name"].to_list() == [" Alice", "Bob", "Carol", None]  # original values kept
    assert clusters["rows"].to_list() == [[0, 1, 2], [3, 4], [6, 7]]
    last, _, _ = exact_dedup(df, DedupConfig(normalize=True, round_floats=3, keep="last"))
    assert last["name"].to_list() == ["ＡＬＩＣＥ", "bob", "Carol", None]
    none, _, _ = exact_dedup(df, DedupConfig(normalize=True, round_floats=3, keep="none"))
    assert none["name"].to_list() == ["Carol"]
    flagged, freport, _ = exact_dedup(
        df, DedupConfig(normalize=True, round_floats=3, action="flag")
    )
    assert flagged.height == df.height and freport["flagged"] == 4
    assert flagged["is_duplicate_issue"].to_list() == [
        False,
        True,
        True,
        False,
        True,
        False,
        False,
        True,
    ]
    # a cluster is named by its first row, so its id does not depend on how rows were partitioned
    assert flagged["duplicate_cluster"].to_list() == [0, 0, 0, 3, 3, None, 6, 6]
    assert flagged["duplicate_score"].to_list() == [0, 0, 0, 0, 0, 1, 0, 0]
    subset, sreport, _ = exact_dedup(df, DedupConfig(columns=["score"], round_floats=0))
    assert sreport["columns"] == ["score"] and subset.height == 4


def test_hash_collisions_cannot_merge_rows() -> None:
    # many distinct rows: only truly equal keys may be clustered
    df = pl.DataFrame({"a": list(range(50_000)) + [7, 7], "b": ["x"] * 50_002})
    _, report, clusters = exact_dedup(df)
    assert report["duplicates"] == 2 and clusters["rows"].to_list() == [[7, 50_000, 50_001]]


def test_bad_input_names_column_and_field() -> None:
    df = pl.DataFrame({"a": [1, 2]})
    with pytest.raises(DataError, match="(?s)field 'columns', column 'nope'.*fix: choose from: a"):
        exact_dedup(df, DedupConfig(columns=["nope"]))
    with pytest.raises(DataError, match="no rows"):
        exact_dedup(df.head(0))
    with pytest.raises(DataError, match="no rows"):
        exact_dedup(df.head(0).lazy())
    with pytest.raises(SpecError, match="params.keep"):
        load_config(DedupConfig, {"keep": "middle"})
    with pytest.raises(SpecError, match="params.normalize"):
        load_config(DedupConfig, {"normalize": ["upper"]})


def test_nested_dtypes() -> None:
    df = pl.DataFrame({"l": [[1, 2], [1, 2], [3]], "s": [{"a": 1}, {"a": 1}, {"a": 2}]})
    out, report, _ = exact_dedup(df)
    assert report["duplicates"] == 1 and out.height == 2
    assert report["examples"][0]["l"] == "[1, 2]"


@pytest.mark.parametrize("keep", ["first", "last", "none"])
def test_bucket_by_bucket_equals_the_whole(adult_train: pl.DataFrame, keep: str) -> None:
    """The keyed split (key hash -> buckets -> reduce per bucket -> report) gives the rows, the
    clusters and the report of the whole, for any number of buckets."""
    from tamis.curate.dedup.exact import (
        ROW,
        dedup_bucket,
        key_hashes,
        plan_dedup,
        report_from_buckets,
    )

    config = DedupConfig(
        columns=[" education", " occupation", " sex", " income"], keep=keep, action="flag"
    )
    whole, report, clusters = exact_dedup(adult_train, config)
    plan = plan_dedup(adult_train.schema, config)
    indexed = adult_train.with_row_index(ROW)
    bucket = key_hashes(indexed, plan).hash(seed=11) % 5
    outs, tables, stats = (
        [],
        {"clusters": [], "examples": []},
        {"rows_in": 0, "rows_out": 0, "removed": 0},
    )
    for b in range(5):
        out, st, tb = dedup_bucket(indexed.filter(bucket == b), config, plan)
        outs.append(out)
        for k, v in st.items():
            stats[k] += v
        for k, t in tb.items():
            tables[k].append(t)
    merged = pl.concat(outs).sort(ROW).drop(ROW)
    rep, cl = report_from_buckets(
        stats, pl.concat(tables["clusters"]), pl.concat(tables["examples"]), plan, config
    )
    assert merged.equals(whole) and rep == report and cl.equals(clusters)
    assert report["clusters"] > 100  # many clusters, spread over the buckets
