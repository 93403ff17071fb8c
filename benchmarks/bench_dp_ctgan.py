"""DP-CTGAN on UCI Adult: utility across epsilons and seeds, epoch time vs non-private training of
the same network, and a canary audit (empirical lower bound on epsilon).

1. Speed: DP-SGD epochs (Opacus, ghost clipping, Poisson sampling) vs the same generator and
   discriminator trained without privacy (plain Adam, shuffled batches of the same size).
2. Utility: for epsilon in {1, 3, 10} and seeds {0, 1, 2}: fit on adult.data with *nothing* public
   but the schema (bounds, domains, modes and frequencies are all learned with DP and charged),
   sample n rows, TSTR on adult.test (HistGradientBoosting): accuracy, minority (>50K) F1 and
   AUC -- mean and sd across seeds, every seed listed -- plus the ledger total. TRTR for reference.
3. Audit: 1000 out-of-distribution canaries, each inserted with probability 1/2; one DP training
   run at epsilon 3; the discriminator's logit ranks them; the one-run bound of Steinke et al.
   (2023) gives an empirical epsilon lower bound (95%) that must stay below 3. A control run at
   epsilon 1000 shows the audit has power.

Runs in 2 worker processes (1 torch thread each). Needs ../shared/datasets/adult (or
TAMIS_SHARED_DATASETS). Prints one JSON line (and writes it to --out).

    .venv/bin/python benchmarks/bench_dp_ctgan.py [--epochs 20] [--seeds 0 1 2] [--eps 1 3 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

SHARED = Path(
    os.environ.get(
        "TAMIS_SHARED_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"
    )
)
NUMERIC = ["age", "fnlwgt", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


ROWS = int(os.environ.get("BENCH_DP_ROWS", "0"))  # dry runs only: first N training rows


def load(name: str) -> Any:
    import polars as pl

    df = pl.read_csv(SHARED / "adult" / name, infer_schema_length=10000)
    df = df.rename({c: c.strip() for c in df.columns})
    strs = [c for c, t in df.schema.items() if t == pl.String]
    df = df.with_columns([pl.col(c).str.strip_chars() for c in strs]).with_columns(
        [pl.when(pl.col(c) == "?").then(None).otherwise(pl.col(c)).alias(c) for c in strs]
    )
    df = df.with_columns([pl.col(c).cast(pl.Int64) for c in NUMERIC])
    return df.head(ROWS) if ROWS and name == "adult.data" else df


def _config(eps: float, epochs: int, **kw: Any) -> Any:
    from tamis.privacy.dp.ctgan import DPCTGANConfig

    return DPCTGANConfig(epsilon=eps, epochs=epochs, threads=1, **kw)


def utility_job(eps: float, seed: int, epochs: int, **kw: Any) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    from tamis.privacy.dp.ctgan import DPCTGAN
    from tamis.privacy.quality import ml_efficacy

    train, test = load("adult.data"), load("adult.test")
    t0 = time.perf_counter()
    model = DPCTGAN(_config(eps, epochs, **kw), seed=seed).fit(train)
    fit_s = time.perf_counter() - t0
    synth = model.sample(train.height, seed=seed)
    r = ml_efficacy(synth, test, "income", "gbm", seed=0, n_boot=0, minority=">50K")
    assert model.ledger is not None
    tot = model.ledger.total()
    return {
        "epsilon": eps,
        "seed": seed,
        "accuracy": r["accuracy"],
        "minority_f1": r["minority_f1"],
        "auc": r["auc"],
        "ledger_epsilon": tot["epsilon"],
        "ledger_delta": tot["delta"],
        "within_target": tot["within_target"],
        "noise_multiplier": model.stats["noise_multiplier"],
        "steps": model.stats["steps"],
        "fit_seconds": fit_s,
        "positive_share": float((synth["income"] == ">50K").mean()),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def audit_job(
    eps: float,
    seed: int,
    epochs: int,
    m: int = 1000,
    k: int = 100,
    rows: int = 0,
    batch: int = 2000,
    **kw: Any,
) -> dict[str, Any]:
    warnings.filterwarnings("ignore")
    import polars as pl

    # the one-run audit is test code (tests/privacy/one_run_audit.py), not part of tamis
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "privacy"))
    from one_run_audit import epsilon_lower_bound, make_canaries

    from tamis.privacy.dp.ctgan import DPCTGAN

    train = load("adult.data")
    if rows:
        train = train.sample(rows, seed=seed)
    canaries = make_canaries(train, m, seed=seed + 100)
    member = np.random.default_rng(seed + 200).random(m) < 0.5
    data = pl.concat([train, canaries.filter(pl.Series(member))])
    model = DPCTGAN(_config(eps, epochs, batch_size=batch, **kw), seed=seed)
    model.keep_discriminator = True
    model.fit(data)
    scores = model.discriminator_scores(canaries, repeats=8, seed=seed)
    assert model.ledger is not None
    out = epsilon_lower_bound(scores, member, k=k, beta=0.05, delta=model.ledger.target_delta)
    return {
        "claimed_epsilon": model.ledger.total()["epsilon"],
        "target_epsilon": eps,
        "train_rows": train.height,
        "batch_size": batch,
        "epochs": epochs,
        **out,
    }


def speed(epochs: int = 1) -> dict[str, Any]:
    """Seconds per epoch: DP-SGD (ghost) vs the same networks trained without privacy."""
    warnings.filterwarnings("ignore")
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    from tamis.privacy.dp.ctgan import DPCTGAN, discriminator_backward, generator_step

    torch.set_num_threads(1)
    train = load("adult.data")
    dp = DPCTGAN(_config(3.0, epochs), seed=0).fit(train)
    dp_epoch = dp.timings["seconds_per_epoch"]
    # the same networks, the same encoded data and batch sizes, no privacy
    cfg, tr = dp.config, dp.transformer
    assert tr is not None
    gen, disc, cs = dp._build()
    spans = tr.spans()
    cond_cols = [i for i, s in enumerate(spans) if s[0] in {c.name for c in tr.categorical}]
    x, idx = tr.transform(train)
    loader = DataLoader(
        TensorDataset(torch.from_numpy(x), torch.from_numpy(idx)),
        batch_size=cfg.batch_size,
        shuffle=True,
    )
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.generator_lr, betas=(0.5, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.discriminator_lr, betas=(0.5, 0.9))
    rng = np.random.default_rng(0)
    crit = nn.BCEWithLogitsLoss()
    t0 = time.perf_counter()
    for _ in range(epochs):
        for rx, ri in loader:
            real = dp._real_input(rx, ri, cs, rng)
            fake = dp._fake_input(gen, cfg.batch_size, cs, spans, rng)
            discriminator_backward(disc, crit, opt_d, real, fake)
            opt_d.step()
            generator_step(
                gen,
                disc,
                opt_g,
                opt_d,
                cfg.batch_size,
                cs,
                spans,
                cond_cols,
                rng,
                cfg.embedding_dim,
            )
    plain_epoch = (time.perf_counter() - t0) / epochs
    return {
        "dp_seconds_per_epoch": dp_epoch,
        "nonprivate_seconds_per_epoch": plain_epoch,
        "ratio": dp_epoch / plain_epoch,
        "epochs_timed": epochs,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def trtr() -> dict[str, Any]:
    from tamis.privacy.quality import ml_efficacy

    r = ml_efficacy(
        load("adult.data"), load("adult.test"), "income", "gbm", seed=0, n_boot=0, minority=">50K"
    )
    return {k: r[k] for k in ("accuracy", "minority_f1", "auc")}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for eps in sorted({r["epsilon"] for r in rows}):
        rs = [r for r in rows if r["epsilon"] == eps]
        s: dict[str, Any] = {
            "n_seeds": len(rs),
            "all_within_target": all(r["within_target"] for r in rs),
            "max_ledger_epsilon": max(r["ledger_epsilon"] for r in rs),
        }
        for key in ("accuracy", "minority_f1", "auc"):
            v = np.array([r[key] for r in rs])
            s[f"{key}_mean"] = float(v.mean())
            s[f"{key}_sd"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        s["per_seed"] = rs
        out[str(eps)] = s
    return out


def _submit_jobs(pool: Any, args: argparse.Namespace, over: dict[str, Any]) -> dict[Any, Any]:
    """Utility runs per (eps, seed), the canary audits, the speed and TRTR jobs."""
    futs: dict[tuple[str, Any, Any], Any] = {}
    if not args.audit_only:
        for e in args.eps:
            for s in args.seeds:
                futs[("u", e, s)] = pool.submit(utility_job, e, s, args.epochs, **over)
    if not args.no_audit:
        # small-data audits (canaries are 1/4 of the rows, 30 epochs of batch 250): more power
        for e in () if args.control_only else (3.0, 1000.0):
            futs[("a", f"small:{e}", 0)] = pool.submit(
                audit_job, e, 0, 30, rows=args.audit_rows, batch=250
            )
        if args.control:  # almost no noise and no effective clipping: the audit must fire
            futs[("a", "small:nonprivate", 0)] = pool.submit(
                audit_job,
                1e9,
                0,
                60,
                rows=args.audit_rows,
                batch=250,
                noise_multiplier=1e-3,
                max_grad_norm=1e3,
                accountant="rdp",
            )
        if not args.audit_only:
            for e in (3.0, 1000.0):
                futs[("a", f"full:{e}", 0)] = pool.submit(audit_job, e, 0, args.epochs)
    if not args.audit_only:
        futs[("s", 0, 0)] = pool.submit(speed)
        futs[("t", 0, 0)] = pool.submit(trtr)
    return futs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--eps", type=float, nargs="+", default=[1.0, 3.0, 10.0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-audit", action="store_true")
    ap.add_argument("--out", default="/tmp/bench_dp_ctgan.json")
    ap.add_argument("--audit-only", action="store_true", help="only the canary audits")
    ap.add_argument("--control", action="store_true", help="add a (nearly) non-private audit")
    ap.add_argument("--control-only", action="store_true", help="with --audit-only: only it")
    ap.add_argument("--generator-lr", type=float, default=None, help="override the default")
    ap.add_argument("--audit-rows", type=int, default=3000, help="training rows of the small audit")
    args = ap.parse_args()
    if not (SHARED / "adult" / "adult.data").exists():
        sys.exit(f"adult not found under {SHARED}")
    t0 = time.perf_counter()
    result: dict[str, Any] = {
        "bench": "dp_ctgan",
        "dataset": "adult",
        "epochs": args.epochs,
        "machine": "2 shared CPU cores (other jobs running)",
    }
    with ProcessPoolExecutor(args.workers) as pool:
        over = {"generator_lr": args.generator_lr} if args.generator_lr else {}
        result["overrides"] = over
        futs = _submit_jobs(pool, args, over)
        rows = []
        for key, f in futs.items():
            r = f.result()
            print(json.dumps({"partial": key, **r}, default=str), file=sys.stderr, flush=True)
            if key[0] == "u":
                rows.append(r)
            elif key[0] == "a":
                result.setdefault("canary_audit", {})[str(key[1])] = r
            elif key[0] == "s":
                result["speed"] = r
            else:
                result["trtr"] = r
    if rows:
        result["utility"] = summarise(rows)
        result["peak_rss_mb_max_worker"] = max(
            [r["peak_rss_mb"] for r in rows] + [result["speed"]["peak_rss_mb"]]
        )
    result["wall_seconds"] = time.perf_counter() - t0
    line = json.dumps(result, default=str)
    Path(args.out).write_text(line)
    print(line)


if __name__ == "__main__":
    main()
