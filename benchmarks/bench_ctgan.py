"""CTGAN on UCI Adult: tamis `ctgan` fit wall time vs calling SDV 2.0 directly, plus quality.

Both fits use the same data (adult.data, cleaned as the `normalize` step would), the same
settings (tamis' default epochs, batch 500, CPU) and the same seed, each in its own fresh process
so peak memory is per method. Quality of the tamis model: SDMetrics quality score and TSTR vs
TRTR (HistGradientBoosting) on adult.test. Needs ../shared/datasets/adult (or
TAMIS_SHARED_DATASETS); prints one JSON line.

    .venv/bin/python benchmarks/bench_ctgan.py [--epochs N] [--rows N]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, emit, load_adult, peak_mb_above, rss_kb, versus  # noqa: E402


def load(name: str) -> Any:
    import polars as pl

    return load_adult(name).filter(pl.col("income").is_not_null())


def _run(method: str, epochs: int, rows: int | None, threads: int, q: Any) -> None:
    import polars as pl
    import torch

    from tamis.privacy.synth import NeuralSynthConfig, fit_synthesizer, sample_synthetic

    torch.set_num_threads(threads)
    df = load("adult.data")
    if rows:
        df = df.head(rows)
    base = rss_kb("VmRSS")
    with Timer() as fit:
        if method == "sdv":
            import warnings

            from sdv.metadata import Metadata
            from sdv.single_table import CTGANSynthesizer

            from tamis.privacy.synth import seed_everything

            pdf = df.to_pandas()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta = Metadata.detect_from_dataframes({"t": pdf})
                seed_everything(0)
                model = CTGANSynthesizer(meta, epochs=epochs, batch_size=500, enable_gpu=False)
                model.fit({"t": pdf})
        else:
            model, info = fit_synthesizer(df, "ctgan", NeuralSynthConfig(epochs=epochs), seed=0)
    timing = {
        "method": method,
        "fit_seconds": fit.seconds,
        "fit_cpu_seconds": fit.cpu_seconds,
        "peak_rss_mb": peak_mb_above(base),
    }
    if method == "sdv":
        q.put(timing)
        return
    syn = sample_synthetic(model, df.height, 0, info)
    from tamis.privacy.quality import quality_report, tstr

    test = load("adult.test")
    qr = quality_report(df, syn)
    ml = tstr(syn, df, test, "income", n_boot=200)
    q.put(
        {
            **timing,
            "quality_score": qr["score"],
            "column_shapes": qr["column_shapes"],
            "column_pair_trends": qr["column_pair_trends"],
            "tstr": {k: ml["tstr"][k] for k in ("accuracy", "minority_f1", "auc")},
            "trtr": {k: ml["trtr"][k] for k in ("accuracy", "minority_f1", "auc")},
            "accuracy_gap_points": 100 * ml["accuracy_gap"],
            "rows": pl.DataFrame(syn).height,
        }
    )


def main() -> None:
    from tamis.privacy.synth import NeuralSynthConfig

    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=NeuralSynthConfig().epochs)
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument(
        "--parallel",
        action="store_true",
        help="run both fits at once, one torch thread each (same contention for both)",
    )
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    results = {}
    threads = 1 if args.parallel else 2
    procs = []
    for method in ("sdv", "tamis"):
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(method, args.epochs, args.rows, threads, q))
        p.start()
        procs.append((method, p, q))
        if not args.parallel:
            results[method] = q.get()
            p.join()
    for method, p, q in procs:
        if method not in results:
            results[method] = q.get()
            p.join()
    t, s = results["tamis"], results["sdv"]
    emit(
        {
            "bench": "ctgan_fit",
            "data": "adult.data (train) / adult.test (holdout)",
            "epochs": args.epochs,
            "baseline": "sdv.single_table.CTGANSynthesizer.fit (direct)",
            **versus("seconds", s["fit_seconds"], t["fit_seconds"], 2),
            "ratio": round(t["fit_seconds"] / s["fit_seconds"], 3),
            **versus("cpu_seconds", s["fit_cpu_seconds"], t["fit_cpu_seconds"], 2),
            "cpu_ratio": round(t["fit_cpu_seconds"] / s["fit_cpu_seconds"], 3),
            **versus("peak_rss_mb", s["peak_rss_mb"], t["peak_rss_mb"], 1),
            "quality_score": round(t["quality_score"], 4),
            "column_shapes": round(t["column_shapes"], 4),
            "column_pair_trends": round(t["column_pair_trends"], 4),
            "tstr": t["tstr"],
            "trtr": t["trtr"],
            "accuracy_gap_points": round(t["accuracy_gap_points"], 2),
            "mode": "parallel, 1 thread each" if args.parallel else "sequential, 2 threads",
            "note": "shared 2-core machine: wall times are noisy; cpu_ratio is steadier",
        }
    )


if __name__ == "__main__":
    main()
