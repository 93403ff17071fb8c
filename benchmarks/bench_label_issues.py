"""Benchmark: tamis `find_label_issues` vs direct scikit-learn + cleanlab code, same data and model.

    .venv/bin/python benchmarks/bench_label_issues.py            # 100k-row comparison + 1M-row run
    .venv/bin/python benchmarks/bench_label_issues.py --rows 20000 --big-rows 0   # quick

Data is generated at run time (no files): `make_classification` numeric features plus two
categorical columns, 4 classes, 20% of the labels flipped uniformly with `inject_label_noise`.
Both sides fit the same model (median imputation + standardisation + one-hot + logistic
regression) with the same 5-fold stratified CV, then run `cleanlab.filter.find_label_issues` and
`cleanlab.rank.get_label_quality_scores`. Each measurement runs in a fresh subprocess (imports done
before the clock starts) and reports its wall time, peak RSS and detection F1 against the flipped
rows (and its CPU time, less sensitive to other load on a shared machine). tamis encodes
categoricals as integer codes in Polars before one-hot encoding (same columns, faster); the direct
code one-hot encodes the strings, as a user would. BLAS threads are pinned (`--threads`, default 1) identically for both sides.

Prints one JSON line per comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, emit  # noqa: E402


def make_data(rows: int, seed: int = 0) -> tuple[pl.DataFrame, pl.DataFrame]:
    from sklearn.datasets import make_classification

    from tamis.curate.noise import LabelNoiseConfig, inject_label_noise

    x, y = make_classification(
        n_samples=rows,
        n_features=12,
        n_informative=8,
        n_redundant=2,
        n_classes=4,
        n_clusters_per_class=2,
        class_sep=1.5,
        random_state=seed,
    )
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {f"x{i}": x[:, i] for i in range(x.shape[1])}
    # two categoricals that carry signal about the class, with some noise
    cols["region"] = np.where(
        rng.random(rows) < 0.7,
        np.array(["n", "s", "e", "w"])[y],
        rng.choice(["n", "s", "e", "w"], rows),
    )
    cols["tier"] = rng.choice(["a", "b", "c"], rows)
    cols["label"] = np.array(["w", "x", "y", "z"])[y]
    df = pl.DataFrame(cols)
    noisy, report = inject_label_noise(df, LabelNoiseConfig(label="label", rate=0.2), seed=seed)
    return noisy, report["tables"]["noise"]


def run_tamis(df: pl.DataFrame, folds: int) -> np.ndarray:
    from tamis.curate.label_issues import LabelIssuesConfig, find_label_issues

    out, _ = find_label_issues(
        df, LabelIssuesConfig(label="label", model="logreg", folds=folds), seed=0
    )
    return out["is_label_issue"].to_numpy()


def run_direct(df: pl.DataFrame, folds: int) -> np.ndarray:
    """What a user writes by hand: the same pipeline, cross_val_predict, cleanlab."""
    import cleanlab.filter
    import cleanlab.rank
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

    pdf = df.to_pandas()
    y = LabelEncoder().fit_transform(pdf.pop("label"))
    numeric = [c for c in pdf.columns if c.startswith("x")]
    categorical = ["region", "tier"]
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                numeric,
            ),
            (
                "cat",
                OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=50),
                categorical,
            ),
        ],
        sparse_threshold=0.3,
    )
    model = Pipeline([("features", pre), ("model", LogisticRegression(max_iter=1000))])
    probs = cross_val_predict(
        model,
        pdf,
        y,
        cv=StratifiedKFold(folds, shuffle=True, random_state=0),
        method="predict_proba",
    )
    issues = cleanlab.filter.find_label_issues(y, probs, filter_by="prune_by_noise_rate")
    cleanlab.rank.get_label_quality_scores(y, probs)
    return np.asarray(issues)


def child(which: str, rows: int, folds: int, threads: int) -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import cleanlab.filter  # noqa: F401  - imports before the clock
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    from tamis.curate.noise import detection_metrics

    df, truth = make_data(rows)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn = run_tamis if which == "tamis" else run_direct
    with threadpool_limits(limits=threads), Timer() as timer:
        flags = fn(df, folds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    m = detection_metrics(flags, truth, n_rows=df.height)
    emit(
        {
            "which": which,
            "rows": rows,
            "seconds": timer.seconds,
            "cpu_seconds": timer.cpu_seconds,
            "peak_rss_mb": peak / 1024,
            "data_rss_mb": base_rss / 1024,
            "f1": m["f1"],
            "precision": m["precision"],
            "recall": m["recall"],
        }
    )


def measure(which: str, rows: int, folds: int, threads: int) -> dict[str, Any]:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        which,
        "--rows",
        str(rows),
        "--folds",
        str(folds),
        "--threads",
        str(threads),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000, help="rows of the head-to-head run")
    ap.add_argument(
        "--big-rows", type=int, default=1_000_000, help="rows of the scale run (0=skip)"
    )
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads, same for both sides")
    ap.add_argument("--repeats", type=int, default=3, help="head-to-head repeats (min is kept)")
    ap.add_argument("--child", choices=["tamis", "direct"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.rows, args.folds, args.threads)
        return
    runs: dict[str, list[dict[str, Any]]] = {"tamis": [], "direct": []}
    for _ in range(args.repeats):
        for which in ("direct", "tamis"):  # interleaved, so machine load hits both alike
            runs[which].append(measure(which, args.rows, args.folds, args.threads))
    best = {k: min(v, key=lambda r: r["seconds"]) for k, v in runs.items()}
    emit(
        {
            "benchmark": "label_issues_vs_direct_cleanlab_sklearn",
            "rows": args.rows,
            "folds": args.folds,
            "threads": args.threads,
            "model": "impute+scale+one-hot + logistic regression",
            "tamis_seconds": round(best["tamis"]["seconds"], 3),
            "baseline_seconds": round(best["direct"]["seconds"], 3),
            "ratio": round(best["tamis"]["seconds"] / best["direct"]["seconds"], 3),
            "tamis_cpu_seconds": round(min(r["cpu_seconds"] for r in runs["tamis"]), 3),
            "baseline_cpu_seconds": round(min(r["cpu_seconds"] for r in runs["direct"]), 3),
            "tamis_peak_rss_mb": round(best["tamis"]["peak_rss_mb"], 1),
            "baseline_peak_rss_mb": round(best["direct"]["peak_rss_mb"], 1),
            "tamis_f1": round(best["tamis"]["f1"], 4),
            "baseline_f1": round(best["direct"]["f1"], 4),
            "all_seconds": {k: [round(r["seconds"], 3) for r in v] for k, v in runs.items()},
        }
    )
    if args.big_rows:
        big = measure("tamis", args.big_rows, args.folds, args.threads)
        emit(
            {
                "benchmark": "label_issues_scale",
                "rows": args.big_rows,
                "folds": args.folds,
                "tamis_seconds": round(big["seconds"], 3),
                "cpu_seconds": round(big["cpu_seconds"], 3),
                "peak_rss_mb": round(big["peak_rss_mb"], 1),
                "rss_before_mb": round(big["data_rss_mb"], 1),
                "f1": round(big["f1"], 4),
                "precision": round(big["precision"], 4),
                "recall": round(big["recall"], 4),
            }
        )


if __name__ == "__main__":
    main()
