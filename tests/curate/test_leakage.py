"""leakage: every count equals an independent DuckDB query; drop never touches the eval set."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
import pytest

from tamis.curate.leakage import LeakageConfig, find_leakage
from tamis.errors import DataError

FEATURES = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country",
]  # fmt: skip


def _with_groups_and_time(df: pl.DataFrame, seed: int, start: date) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    days = rng.integers(0, 400, df.height)
    return df.with_columns(
        pl.Series("user", rng.integers(0, 40_000, df.height)),
        pl.Series("when", [start + timedelta(days=int(d)) for d in days]),
    )


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(con.sql(sql).fetchall()[0][0])


def test_tabular_counts_equal_duckdb(
    adult_train_clean: pl.DataFrame, adult_test_clean: pl.DataFrame
) -> None:
    train = _with_groups_and_time(adult_train_clean, 0, date(2020, 1, 1))
    test = _with_groups_and_time(adult_test_clean, 1, date(2021, 1, 1))
    out, report, tables = find_leakage(
        train,
        {"test": test},
        LeakageConfig(label="income", group="user", time="when", action="drop"),
    )
    rep = report["against"]["test"]
    con = duckdb.connect()
    con.register("train", train.to_arrow())
    con.register("test", test.to_arrow())
    on = " AND ".join(f'a."{c}" IS NOT DISTINCT FROM b."{c}"' for c in FEATURES)
    assert rep["exact"]["columns"] == FEATURES
    exact_train = _one(
        con, f"SELECT count(*) FROM train a WHERE EXISTS (SELECT 1 FROM test b WHERE {on})"
    )
    exact_test = _one(
        con, f"SELECT count(*) FROM test b WHERE EXISTS (SELECT 1 FROM train a WHERE {on})"
    )
    assert rep["exact"]["input_rows"] == exact_train > 0
    assert rep["exact"]["eval_rows"] == exact_test > 0
    conflict = _one(
        con,
        f"SELECT count(*) FROM train a WHERE EXISTS (SELECT 1 FROM test b WHERE {on}"
        " AND a.income IS DISTINCT FROM b.income)",
    )
    assert rep["exact"]["conflicting_labels"]["input_rows"] == conflict > 0
    groups = _one(
        con,
        "SELECT count(*) FROM (SELECT DISTINCT user FROM train INTERSECT SELECT DISTINCT user FROM test)",
    )
    group_rows = _one(con, "SELECT count(*) FROM train WHERE user IN (SELECT user FROM test)")
    group_eval = _one(con, "SELECT count(*) FROM test WHERE user IN (SELECT user FROM train)")
    assert (
        rep["group"]["shared_groups"],
        rep["group"]["input_rows"],
        rep["group"]["eval_rows"],
    ) == (
        groups,
        group_rows,
        group_eval,
    )
    later = _one(con, 'SELECT count(*) FROM train WHERE "when" > (SELECT min("when") FROM test)')
    assert rep["temporal"]["input_rows_after_eval_start"] == later > 0
    leaked = _one(
        con,
        f"SELECT count(*) FROM train a WHERE EXISTS (SELECT 1 FROM test b WHERE {on})"
        ' OR user IN (SELECT user FROM test) OR "when" > (SELECT min("when") FROM test)',
    )
    assert report["leaked_rows"] == leaked == train.height - out.height == report["removed"]
    assert tables["test_exact"].height == _one(
        con, f"SELECT count(*) FROM train a JOIN test b ON {on}"
    )
    # no feature of adult predicts income almost perfectly
    assert report["target_leakage"]["flagged_features"] == []


def test_text_counts_equal_duckdb(sms: pl.DataFrame) -> None:
    # NFKC in Python first so that DuckDB sees the same characters (it has no NFKC)
    sms = sms.with_row_index("id").with_columns(
        pl.col("SMS").map_elements(
            lambda s: unicodedata.normalize("NFKC", s), return_dtype=pl.String
        )
    )
    train, test = sms.filter(pl.col("id") % 4 != 0), sms.filter(pl.col("id") % 4 == 0)
    out, report, tables = find_leakage(
        train.drop("id"),
        test.drop("id"),
        LeakageConfig(text="SMS", label="Label", ngram=8, near_threshold=0.8, action="flag"),
    )
    rep = report["against"]["against"]
    con = duckdb.connect()
    con.register("train", train.with_row_index("rid").to_arrow())
    con.register("test", test.with_row_index("rid").to_arrow())

    def grams(table: str, n: int) -> str:
        return f"""
        SELECT DISTINCT rid, unnest(CASE WHEN len(tok) >= {n}
            THEN [array_to_string(tok[i:i+{n - 1}], ' ') FOR i IN range(1, len(tok) - {n - 2})]
            WHEN len(tok) > 0 THEN [array_to_string(tok, ' ')] ELSE [] END) AS g
        FROM (SELECT rid, regexp_extract_all(lower(SMS), '[\\p{{L}}\\p{{N}}]+') AS tok FROM {table})"""

    con.sql(f"CREATE TABLE ga AS {grams('train', 8)}")
    con.sql(f"CREATE TABLE gb AS {grams('test', 8)}")
    assert (
        rep["ngram"]["contaminated_eval_items"]
        == _one(con, "SELECT count(DISTINCT rid) FROM gb WHERE g IN (SELECT g FROM ga)")
        > 0
    )
    assert rep["ngram"]["input_rows_carrying"] == _one(
        con, "SELECT count(DISTINCT rid) FROM ga WHERE g IN (SELECT g FROM gb)"
    )
    assert rep["ngram"]["eval_items"] == _one(con, "SELECT count(DISTINCT rid) FROM gb")
    assert tables["against_ngram"].height == _one(
        con, "SELECT count(*) FROM (SELECT DISTINCT ga.rid, gb.rid FROM ga JOIN gb USING (g))"
    )
    # exact overlap of (Label, SMS) rows
    assert rep["exact"]["input_rows"] == _one(
        con, "SELECT count(*) FROM train a WHERE EXISTS (SELECT 1 FROM test b WHERE a.SMS = b.SMS)"
    )
    # near overlap: exact Jaccard of 5-gram sets in SQL
    con.sql(f"CREATE TABLE na AS {grams('train', 5)}")
    con.sql(f"CREATE TABLE nb AS {grams('test', 5)}")
    con.sql("""CREATE TABLE nj AS
        WITH sa AS (SELECT rid, count(*) n FROM na GROUP BY rid),
             sb AS (SELECT rid, count(*) n FROM nb GROUP BY rid),
             i AS (SELECT na.rid ra, nb.rid rb, count(*) c FROM na JOIN nb USING (g) GROUP BY ALL)
        SELECT ra, rb FROM i JOIN sa ON ra = sa.rid JOIN sb ON rb = sb.rid
        WHERE c / (sa.n + sb.n - c) >= 0.8""")
    assert rep["near"]["input_rows"] == _one(con, "SELECT count(DISTINCT ra) FROM nj") > 0
    assert rep["near"]["eval_rows"] == _one(con, "SELECT count(DISTINCT rb) FROM nj")
    assert rep["near"]["pairs"] == _one(con, "SELECT count(*) FROM nj")
    flagged = out.filter(pl.col("is_leakage_issue"))
    assert flagged.height == report["leaked_rows"] > 0 and out.height == train.height
    assert (flagged["leakage_score"] < 1).all()


def test_target_leakage_flags_a_planted_feature(adult_train_clean: pl.DataFrame) -> None:
    rng = np.random.default_rng(0)
    base = adult_train_clean.filter(pl.col("income").is_not_null())
    noisy = (base["income"] == ">50K").to_numpy() ^ (rng.random(base.height) < 0.002)
    df = base.with_columns(pl.Series("leak", np.where(noisy, 10.0, 0.0) + rng.random(noisy.size)))
    tl = find_leakage(df, df.head(10), LeakageConfig(label="income", columns=["age"])).report[
        "target_leakage"
    ]
    assert tl["flagged_features"] == ["leak"]
    assert tl["features"][0]["auc"] > 0.99 and tl["features"][1]["auc"] < 0.9


def test_bad_input() -> None:
    df = pl.DataFrame({"a": [1, 2], "t": ["x", "y"], "when": ["2020", "2021"]})
    with pytest.raises(DataError, match="column 'label'"):
        find_leakage(df, df, LeakageConfig(label="label"))
    with pytest.raises(DataError, match="no rows"):
        find_leakage(df, df.head(0))
    with pytest.raises(DataError, match="column 'a'.*not a string"):
        find_leakage(df, df, LeakageConfig(text="a"))
    with pytest.raises(DataError, match="column 'when'.*date/time"):
        find_leakage(df, df, LeakageConfig(time="when"))
    with pytest.raises(DataError, match="no eval set"):
        find_leakage(df, [])


def test_mixed_dtypes_compare_without_false_matches() -> None:
    train = pl.DataFrame({"k": [1, 2, None], "g": ["a", "b", "c"]})
    ev = pl.DataFrame({"k": ["1", "x", "3"], "g": [1, 2, 3]})
    rep = find_leakage(train, ev, LeakageConfig(columns=["k"], group="g")).report["against"][
        "against"
    ]
    assert rep["exact"]["input_rows"] == 1  # "1" == 1; "x" is not null, so it matches nothing
    assert rep["group"]["shared_groups"] == 0
    ints = pl.DataFrame({"k": [1.0, 2.5]})
    assert (
        find_leakage(train, ints, LeakageConfig(columns=["k"])).report["against"]["against"][
            "exact"
        ]["input_rows"]
        == 1
    )


def test_nothing_to_compare_is_an_error_not_a_silent_report() -> None:
    with pytest.raises(DataError, match="shares no column"):
        find_leakage(pl.DataFrame({"a": [1]}), {"test": pl.DataFrame({"b": [1]})})


def test_grouped_auc_equals_sklearn_on_rows() -> None:
    from sklearn.metrics import roc_auc_score

    from tamis.curate.target_leakage import _grouped_auc

    rng = np.random.default_rng(3)
    score = rng.integers(0, 6, 40) / 5.0  # repeated scores: ties across cells too
    pos = rng.integers(0, 20, 40).astype(float)
    neg = rng.integers(0, 20, 40).astype(float)
    y = np.concatenate([np.ones(int(pos.sum())), np.zeros(int(neg.sum()))])
    s = np.concatenate([np.repeat(score, pos.astype(int)), np.repeat(score, neg.astype(int))])
    assert abs(_grouped_auc(score, pos, neg) - roc_auc_score(y, s)) < 1e-12
