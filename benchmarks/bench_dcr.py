"""DCR + NNDR (synthetic -> train and synthetic -> holdout, 2 nearest neighbours each) at three sizes:
tamis' blocked float32 matrix products vs scikit-learn `NearestNeighbors(algorithm="brute")`.

Data (built here, seeded): a mixed-type table of 6 numeric columns (some skewed, some with nulls)
and 6 categorical columns (3 to 40 levels), three independent draws used as train, holdout and
synthetic, each of N rows. Both methods get the same encoded float32 matrices (tamis' encoder:
robust-scaled numbers, one-hot categories); the encoding time is reported separately. The quality
figure is the largest absolute difference between the two methods' distances.

    .venv/bin/python benchmarks/bench_dcr.py [--sizes 10000 20000 30000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, in_fresh_process, peak_mb_above, rss_kb, versus  # noqa: E402


def make_table(n: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    cols: dict[str, Any] = {
        "age": rng.integers(18, 90, n),
        "income": rng.lognormal(10, 1, n).round(2),
        "hours": rng.normal(40, 10, n).round(),
        "score": rng.random(n),
        "gain": np.where(rng.random(n) < 0.9, 0.0, rng.exponential(5000, n)),
        "debt": np.where(rng.random(n) < 0.05, np.nan, rng.normal(0, 1, n)),
    }
    shape = np.random.default_rng(0)  # the same category frequencies in every draw
    for i, levels in enumerate((3, 5, 8, 12, 20, 40)):
        p = shape.dirichlet(np.ones(levels))
        cols[f"c{i}"] = rng.choice([f"v{j}" for j in range(levels)], n, p=p)
    return pl.DataFrame(cols).with_columns(pl.col("debt").fill_nan(None))


def _child(method: str, n: int, q: Any) -> None:
    """One method at one size in a fresh process: seconds and peak RSS above the input data."""
    from sklearn.neighbors import NearestNeighbors

    from tamis.privacy.audit.distance import dcr_nndr
    from tamis.privacy.audit.encode import Encoder

    train, hold, syn = make_table(n, 1), make_table(n, 2), make_table(n, 3)
    t0 = time.perf_counter()
    enc = Encoder.fit(train)
    x_tr, x_ho, x_sy = enc.transform(train), enc.transform(hold), enc.transform(syn)
    encode_s = time.perf_counter() - t0
    base = rss_kb("VmRSS")
    t0 = time.perf_counter()
    if method == "sklearn":
        d_tr, _ = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(x_tr).kneighbors(x_sy)
        d_ho, _ = NearestNeighbors(n_neighbors=2, algorithm="brute").fit(x_ho).kneighbors(x_sy)
        seconds = time.perf_counter() - t0
        with np.errstate(divide="ignore", invalid="ignore"):
            nndr = np.where(d_tr[:, 1] > 0, d_tr[:, 0] / d_tr[:, 1], 1.0)
        arrays = {"dcr_train": d_tr[:, 0], "dcr_holdout": d_ho[:, 0], "nndr_train": nndr}
        share = float("nan")
    else:
        fig, arrays = dcr_nndr(x_sy, x_tr, x_ho, n_boot=0)
        seconds = time.perf_counter() - t0
        share = fig["closer_to_train_share"]
    q.put(
        {
            "seconds": seconds,
            "peak_mb": peak_mb_above(base),
            "encode_seconds": encode_s,
            "dims": int(x_tr.shape[1]),
            "share": share,
            "arrays": {k: np.asarray(v, dtype=np.float64) for k, v in arrays.items()},
        }
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[10000, 20000, 30000])
    args = ap.parse_args()
    for n in args.sizes:
        b = in_fresh_process(_child, "sklearn", n, start="fork")
        t = in_fresh_process(_child, "tamis", n, start="fork")
        err = max(
            float(np.abs(t["arrays"][k] - b["arrays"][k]).max())
            for k in ("dcr_train", "dcr_holdout")
        )
        nndr_err = float(np.abs(t["arrays"]["nndr_train"] - b["arrays"]["nndr_train"]).max())
        emit(
            {
                "bench": "dcr_nndr",
                "rows": n,
                "dims": t["dims"],
                "baseline": "sklearn NearestNeighbors(brute, k=2) x2",
                **versus("seconds", b["seconds"], t["seconds"]),
                "ratio": round(t["seconds"] / b["seconds"], 3),
                **versus("peak_mb", b["peak_mb"], t["peak_mb"], 1),
                "encode_seconds": round(t["encode_seconds"], 3),
                "max_abs_dcr_diff": err,
                "max_abs_nndr_diff": nndr_err,
                "closer_to_train_share": round(t["share"], 4),
                "note": "shared 2-core machine: wall times are noisy",
            }
        )


if __name__ == "__main__":
    main()
