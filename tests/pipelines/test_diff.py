"""`tamis diff`: whole-row multiset comparison and per-column changes by key, checked with DuckDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from tamis.cli import app
from tamis.pipelines.diff import diff_versions
from tamis.pipelines.hashing import hash_json
from tamis.pipelines.store import Store

runner = CliRunner()


def put(store: Store, name: str, frame: pl.DataFrame) -> str:
    vid = hash_json({"test-diff": name, "rows": frame.height, "cols": frame.columns})
    store.write_version(
        version_id=vid,
        name=f"t/{name}",
        frame=frame,
        parents=[],
        step={"name": name, "type": "source", "params": {}},
        seed=None,
    )
    return vid


def duck_except_all(x: pl.DataFrame, y: pl.DataFrame) -> int:
    """Rows of x not in y, as multisets (DuckDB's EXCEPT ALL)."""
    con = duckdb.connect()
    con.register("x", x.to_arrow())
    con.register("y", y.to_arrow())
    cols = ", ".join(f'"{c}"' for c in x.columns)
    n = con.execute(f"SELECT count(*) FROM (SELECT {cols} FROM x EXCEPT ALL SELECT {cols} FROM y)")
    return int(n.fetchone()[0])  # type: ignore[index]


@pytest.fixture
def adult(adult_train_clean: pl.DataFrame) -> pl.DataFrame:
    # (the fixture's plain read_csv keeps adult.data's blank last line as an all-null row)
    rows = adult_train_clean.filter(~pl.all_horizontal(pl.all().is_null()))
    assert rows.height == 32_561
    return rows.with_row_index("id").with_columns(pl.col("id").cast(pl.Int64))


def modified(adult: pl.DataFrame) -> pl.DataFrame:
    """Some values changed, some rows removed, some duplicated, one new row, order shuffled."""
    b = adult.with_columns(
        pl.when(pl.col("age") > 60)
        .then(pl.col("hours-per-week") + 1)
        .otherwise(pl.col("hours-per-week"))
        .alias("hours-per-week"),
        pl.when(pl.col("id") % 97 == 0)
        .then(pl.lit(None, pl.String))
        .otherwise(pl.col("occupation"))
        .alias("occupation"),
    )
    b = b.filter(pl.col("id") % 50 != 3)
    extra = b.filter(pl.col("id") % 400 == 1).with_columns(pl.col("id") + 1_000_000)
    dup = b.filter(pl.col("id") % 300 == 7)
    return pl.concat([b, extra, dup]).sample(fraction=1.0, shuffle=True, seed=1)


def test_whole_rows_match_duckdb_except_all_on_adult(store: Store, adult: pl.DataFrame) -> None:
    b = modified(adult)
    ida, idb = put(store, "a", adult), put(store, "b", b)
    d = diff_versions(store, ida, idb)
    assert not d["schema_changed"] and d["compared_columns"] == adult.columns
    removed, added = duck_except_all(adult, b), duck_except_all(b, adult)
    assert (d["rows_removed"], d["rows_added"]) == (removed, added)
    assert d["rows_unchanged"] == adult.height - removed == b.height - added
    assert added > 1000 and removed > 1000
    # the same diff with B's rows in another order
    again = diff_versions(store, ida, put(store, "b2", b.reverse()))
    for k in ("rows_added", "rows_removed", "rows_unchanged", "examples_added", "examples_removed"):
        assert again[k] == d[k]


def test_every_value_changed_is_not_unchanged(store: Store, adult: pl.DataFrame) -> None:
    """The report of issue 12: all values changed but rows compared on one column."""
    a = adult.drop("id")
    b = a.with_columns(
        [pl.col(c) + 1 for c, t in a.schema.items() if t.is_integer() and c != "age"]
        + [pl.col(c) + "!" for c, t in a.schema.items() if t == pl.String]
    )
    # same names and types: every row differs
    ida = put(store, "a", a)
    d = diff_versions(store, ida, put(store, "b", b))
    assert d["rows_unchanged"] == 0 and d["rows_removed"] == duck_except_all(a, b) == a.height
    # names changed too (all but age): the schema change is said before any row figure
    renamed = b.rename({c: c.upper() for c in b.columns if c != "age"})
    idr = put(store, "r", renamed)
    d = diff_versions(store, ida, idr)
    assert d["schema_changed"] and d["compared_columns"] == ["age"]
    assert len(d["schema"]["added"]) == len(d["schema"]["removed"]) == 14
    assert {p["to"] for p in d["schema"]["possibly_renamed"]} == set(renamed.columns) - {"age"}
    res = runner.invoke(app, ["diff", ida, idr, "--store", str(store.root)])
    assert res.exit_code == 0, res.output
    text = res.output
    assert "schema differs" in text and "1 common column(s) only: age" in text
    assert text.index("schema differs") < text.index("whole rows")


def test_by_key_counts_per_column_changes_like_a_duckdb_join(
    store: Store, adult: pl.DataFrame, tmp_path: Path
) -> None:
    b = modified(adult)
    ida, idb = put(store, "a", adult), put(store, "b", b)
    d = diff_versions(store, ida, idb, key=["id"], examples=3)
    k = d["key"]
    con = duckdb.connect()
    con.register("x", adult.to_arrow())
    bu = b.unique(subset=["id"], keep="none")  # ids repeated in b cannot be matched one to one
    con.register("y", bu.to_arrow())
    con.register("yall", b.to_arrow())

    def q(sql: str) -> int:
        return int(con.execute(sql).fetchone()[0])  # type: ignore[index]

    assert k["rows_matched"] == q("SELECT count(*) FROM x JOIN y USING (id)")
    assert k["rows_only_in_a"] == q(
        "SELECT count(*) FROM x WHERE NOT EXISTS (SELECT 1 FROM yall WHERE yall.id = x.id)"
    )
    assert k["rows_only_in_b"] == q(
        "SELECT count(*) FROM yall WHERE NOT EXISTS (SELECT 1 FROM x WHERE x.id = yall.id)"
    )
    assert k["repeated_key_rows_b"] == b.height - bu.height - 0 and k["repeated_key_rows_a"] == (
        adult.filter(
            pl.col("id").is_in(b.filter(pl.col("id").is_duplicated())["id"].implode())
        ).height
    )
    expected = {}
    for c in adult.columns:
        if c == "id":
            continue
        n = q(f'SELECT count(*) FROM x JOIN y USING (id) WHERE x."{c}" IS DISTINCT FROM y."{c}"')
        if n:
            expected[c] = n
    assert k["columns_changed"] == expected
    assert set(expected) == {"hours-per-week", "occupation"}
    assert k["rows_changed"] == q(
        'SELECT count(*) FROM x JOIN y USING (id) WHERE x."hours-per-week" IS DISTINCT FROM '
        'y."hours-per-week" OR x.occupation IS DISTINCT FROM y.occupation'
    )
    ex = k["examples"]["hours-per-week"]
    assert len(ex) == 3 and all(e["b"] == e["a"] + 1 for e in ex)
    assert [e["id"] for e in ex] == sorted(e["id"] for e in ex)
    # on the command line: the per-column table, and --json gives the same figures
    res = runner.invoke(app, ["diff", ida, idb, "--key", "id", "--store", str(store.root)])
    assert res.exit_code == 0, res.output
    assert "hours-per-week" in res.output and f"{expected['occupation']:,}" in res.output
    js: dict[str, Any] = json.loads(
        runner.invoke(
            app, ["diff", ida, idb, "--key", "id", "--store", str(store.root), "--json"]
        ).stdout
    )
    assert js["key"]["columns_changed"] == expected


def test_bad_key_is_a_clear_error(store: Store) -> None:
    a = pl.DataFrame({"id": [1, 2], "x": ["p", "q"]})
    b = pl.DataFrame({"ident": [1, 2], "x": ["p", "r"]})
    ida, idb = put(store, "a", a), put(store, "b", b)
    res = runner.invoke(app, ["diff", ida, idb, "--key", "id", "--store", str(store.root)])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "'id' not in B" in res.output and "fix:" in res.output


def test_nested_and_retyped_columns(store: Store) -> None:
    a = pl.DataFrame({"id": [1, 2, 3], "tags": [["a"], ["b"], []], "n": [1, 2, 3]})
    b = pl.DataFrame({"id": [1, 2, 3], "tags": [["a"], ["c"], []], "n": ["1", "2", "4"]})
    d = diff_versions(store, put(store, "a", a), put(store, "b", b), key=["id"])
    assert [r["name"] for r in d["schema"]["retyped"]] == ["n"]
    assert (d["rows_added"], d["rows_removed"], d["rows_unchanged"]) == (2, 2, 1)
    assert d["key"]["columns_changed"] == {"tags": 1, "n": 1}


def test_key_names_that_could_clash_with_internal_ones(store: Store) -> None:
    """`--key a,a` and columns named like internal suffixes (found by the fuzz test)."""
    a = pl.DataFrame({"k": [1, 2, 3], "x": [1, 2, 3], "x__a": [5, 6, 7], "__k0": [0, 0, 0]})
    b = a.with_columns(pl.when(pl.col("k") == 2).then(9).otherwise(pl.col("x__a")).alias("x__a"))
    d = diff_versions(store, put(store, "a", a), put(store, "b", b), key=["k", "k"])
    assert d["key"]["columns"] == ["k"] and d["key"]["columns_changed"] == {"x__a": 1}
    assert d["key"]["examples"]["x__a"] == [{"k": 2, "a": 6, "b": 9}]
