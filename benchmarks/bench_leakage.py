"""Leakage checks at three sizes (up to 1M training x 100k eval rows): tamis vs the same counts in DuckDB.

Data (built here): 10 features, a binary label, an entity id, a date and a short text per row; the
eval set copies ~2% of training rows (a third of them with the label flipped), shares entity ids and
overlaps in time, and some eval texts are spliced from training texts. tamis runs exact overlap,
conflicting labels, group, temporal, 13-gram contamination and target leakage (near overlap is
benchmarked in bench_near_dedup.py); the baseline is DuckDB SQL computing the same counts on the same
Arrow data, and every count is compared.

    .venv/bin/python benchmarks/bench_leakage.py [--sizes 250000,500000,1000000]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, emit  # noqa: E402

NGRAM = 13
FEATURES = [f"f{i}" for i in range(10)]


def make(n_train: int, n_eval: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20_000)])

    def frame(n: int, start: date) -> pl.DataFrame:
        cols: dict[str, Any] = {
            f"f{i}": rng.integers(0, 1000 if i < 5 else 10, n) for i in range(10)
        }
        cols["label"] = rng.integers(0, 2, n)
        cols["user"] = rng.integers(0, n * 5, n)
        lens = rng.integers(14, 30, n)
        words = vocab[rng.zipf(1.3, int(lens.sum())) % vocab.size]
        cuts = np.cumsum(lens)[:-1]
        cols["text"] = [" ".join(p) for p in np.split(words, cuts)]
        df = pl.DataFrame(cols)
        days = rng.integers(0, 365, n)
        return df.with_columns((pl.lit(start) + pl.duration(days=pl.Series(days))).alias("when"))

    train = frame(n_train, date(2020, 1, 1))
    ev = frame(n_eval, date(2020, 12, 1))
    k = n_eval // 50
    src = rng.choice(n_train, k, replace=False)
    copies = train[src].with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(1 - pl.col("label"))
        .otherwise(pl.col("label"))
        .alias("label"),
        pl.col("when") + pl.duration(days=330),
    )
    # another k eval texts start with 15 words of a training text (partial contamination)
    donors = train["text"].gather(rng.choice(n_train, k, replace=False))
    spliced = ev.slice(k, k).with_columns(
        pl.concat_str(
            [donors.str.split(" ").list.head(15).list.join(" "), pl.col("text")], separator=" "
        ).alias("text")
    )
    ev = pl.concat([copies, spliced, ev.slice(2 * k)])
    return train, ev


def run_tamis(train: pl.DataFrame, ev: pl.DataFrame) -> tuple[float, dict[str, int]]:
    from tamis.curate.leakage import LeakageConfig, find_leakage

    with Timer() as timer:
        _, report, _ = find_leakage(
            train,
            {"eval": ev},
            LeakageConfig(
                columns=FEATURES,
                label="label",
                group="user",
                time="when",
                text="text",
                ngram=NGRAM,
                near_threshold=None,
                features=FEATURES + ["user"],
            ),
        )
    r = report["against"]["eval"]
    return timer.seconds, {
        "exact_input_rows": r["exact"]["input_rows"],
        "exact_eval_rows": r["exact"]["eval_rows"],
        "conflicting_input_rows": r["exact"]["conflicting_labels"]["input_rows"],
        "group_input_rows": r["group"]["input_rows"],
        "temporal_input_rows": r["temporal"]["input_rows_after_eval_start"],
        "contaminated_eval_items": r["ngram"]["contaminated_eval_items"],
        "ngram_input_rows": r["ngram"]["input_rows_carrying"],
    }


def run_duckdb(train: pl.DataFrame, ev: pl.DataFrame) -> tuple[float, dict[str, int]]:
    import duckdb

    con = duckdb.connect()
    con.register("a", train.with_row_index("rid").to_arrow())
    con.register("b", ev.with_row_index("rid").to_arrow())
    on = " AND ".join(f"a.{c} IS NOT DISTINCT FROM b.{c}" for c in FEATURES)

    def one(sql: str) -> int:
        return int(con.sql(sql).fetchall()[0][0])

    def grams(t: str) -> str:
        n = NGRAM
        return f"""SELECT DISTINCT rid, unnest(CASE WHEN len(tok) >= {n}
            THEN [array_to_string(tok[i:i+{n - 1}], ' ') FOR i IN range(1, len(tok) - {n - 2})]
            WHEN len(tok) > 0 THEN [array_to_string(tok, ' ')] ELSE [] END) AS g
            FROM (SELECT rid, regexp_extract_all(lower(text), '[\\p{{L}}\\p{{N}}]+') AS tok FROM {t})"""

    t0 = time.perf_counter()
    out = {
        "exact_input_rows": one(
            f"SELECT count(*) FROM a WHERE EXISTS (SELECT 1 FROM b WHERE {on})"
        ),
        "exact_eval_rows": one(f"SELECT count(*) FROM b WHERE EXISTS (SELECT 1 FROM a WHERE {on})"),
        "conflicting_input_rows": one(
            f"SELECT count(*) FROM a WHERE EXISTS (SELECT 1 FROM b WHERE {on} AND a.label <> b.label)"
        ),
        "group_input_rows": one("SELECT count(*) FROM a WHERE user IN (SELECT user FROM b)"),
        "temporal_input_rows": one(
            'SELECT count(*) FROM a WHERE "when" > (SELECT min("when") FROM b)'
        ),
    }
    con.sql(f"CREATE TEMP TABLE ga AS {grams('a')}")
    con.sql(f"CREATE TEMP TABLE gb AS {grams('b')}")
    out["contaminated_eval_items"] = one(
        "SELECT count(DISTINCT rid) FROM gb WHERE g IN (SELECT g FROM ga)"
    )
    out["ngram_input_rows"] = one(
        "SELECT count(DISTINCT rid) FROM ga WHERE g IN (SELECT g FROM gb)"
    )
    return time.perf_counter() - t0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="250000,500000,1000000")
    args = parser.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        train, ev = make(n, n // 10)
        t_tamis, c_tamis = run_tamis(train, ev)
        t_duck, c_duck = run_duckdb(train, ev)
        rows.append(
            {
                "train_rows": n,
                "eval_rows": n // 10,
                "tamis_seconds": round(t_tamis, 3),
                "baseline_seconds": round(t_duck, 3),
                "ratio_tamis_over_baseline": round(t_tamis / t_duck, 3),
                "counts_equal": c_tamis == c_duck,
                "counts": c_tamis,
            }
        )
    base = rows[0]
    growth = [
        round(
            (r["tamis_seconds"] / base["tamis_seconds"]) / (r["train_rows"] / base["train_rows"]), 3
        )
        for r in rows
    ]
    emit(
        {
            "bench": "leakage",
            "baseline": "duckdb SQL (same counts)",
            "checks": [
                "exact",
                "conflicting_labels",
                "group",
                "temporal",
                f"{NGRAM}-gram",
                "target_leakage (tamis only)",
            ],
            "sizes": rows,
            "tamis_time_per_row_relative_to_smallest": growth,
            "peak_rss_mb_process": round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
            ),
            "all_counts_equal": all(r["counts_equal"] for r in rows),
        }
    )


if __name__ == "__main__":
    main()
