"""Splitting HH-RLHF style transcripts, 160,800 pairs (the size of HH-RLHF train): tamis vs TRL.

Baseline: TRL's `extract_prompt` mapped over a `datasets.Dataset` (what DPOTrainer does when the
data has no `prompt` column): the longest common character prefix of chosen and rejected.
tamis: `pairs_from_transcripts` (split at the final Assistant marker, prompts checked equal, both
text and message forms, stats report).

The data is built at run time: 1-3 human turns; in 30% of pairs both responses start with the same
words ("I think ...", as often in HH-RLHF), and 1% of pairs have prompts that differ (a malformed
pair). Quality figure: the share of pairs split exactly at the final Assistant marker (correct), and
the malformed pairs that were passed on silently. Each method runs in a fresh process; peak memory
is the process's peak RSS above its RSS once the data was built.

    .venv/bin/python benchmarks/bench_preferences.py [--rows 160800]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import random
import time
from typing import Any

H, A = "\n\nHuman: ", "\n\nAssistant: "


def make_rows(n: int, seed: int = 0) -> tuple[list[str], list[str], list[int]]:
    """chosen, rejected and the expected prompt length (-1 for a malformed pair)."""
    from tamis.curate.preferences import tone_pairs

    base = tone_pairs(min(n, 20000), seed=seed, format="conversational")
    items = [(p[0]["content"], c[0]["content"], r[0]["content"])
             for p, c, r in base.select("prompt", "chosen", "rejected").iter_rows()]  # fmt: skip
    rng = random.Random(seed)
    chosen, rejected, cut = [], [], []
    for i in range(n):
        q, f, r = items[i % len(items)]
        hist = "".join(f"{H}{rng.choice(items)[0]}{A}{rng.choice(items)[1]}"
                       for _ in range(rng.randrange(3)))  # fmt: skip
        if rng.random() < 0.3:
            f, r = "I think " + f, "I think " + r
        prompt = f"{hist}{H}{q}\n\nAssistant:"
        other = prompt
        if rng.random() < 0.01:
            other = f"{hist}{H}{q} (edited)\n\nAssistant:"
        chosen.append(prompt + " " + f)
        rejected.append(other + " " + r)
        cut.append(len(prompt) if other == prompt else -1)
    return chosen, rejected, cut


def _rss_kb() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    return 0


def _peak_kb() -> int:
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def _run(method: str, rows: int, out: Any) -> None:
    import polars as pl
    from datasets import Dataset, disable_progress_bars
    from trl.data_utils import extract_prompt

    from tamis.curate.preferences import pairs_from_transcripts

    chosen, rejected, cut = make_rows(rows)  # libraries and data loaded before the baseline RSS
    base_rss = _rss_kb()
    if method == "tamis":
        t = time.perf_counter()
        res = pairs_from_transcripts(pl.DataFrame({"chosen": chosen, "rejected": rejected}))
        seconds = time.perf_counter() - t
        lens = dict(zip(res.pairs["source_row"].to_list(), res.pairs["prompt"].str.len_chars().to_list(), strict=True))  # fmt: skip
        got = [lens.get(i, -1) for i in range(rows)]
    else:
        disable_progress_bars()
        t = time.perf_counter()
        ds = Dataset.from_dict({"chosen": chosen, "rejected": rejected}).map(extract_prompt)
        seconds = time.perf_counter() - t
        got = [len(p) for p in ds["prompt"]]
    malformed = sum(c == -1 for c in cut)
    correct = sum(g == c for g, c in zip(got, cut, strict=True) if c != -1)
    passed_bad = sum(g != -1 for g, c in zip(got, cut, strict=True) if c == -1)
    out.put({
        "method": method, "seconds": seconds,
        "correct_split_share": correct / (rows - malformed),
        "malformed_passed_on": passed_bad, "malformed": malformed,
        "peak_mb_above_data": max(0, _peak_kb() - base_rss) / 1024,
    })  # fmt: skip


def measure(method: str, rows: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_run, args=(method, rows, q))
    p.start()
    result = q.get()
    p.join()
    return dict(result)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=160_800)
    rows = ap.parse_args().rows
    base, ours = measure("trl_extract_prompt", rows), measure("tamis", rows)
    print(json.dumps({
        "bench": "preference_transcripts", "rows": rows,
        "baseline": "trl.data_utils.extract_prompt via datasets.map",
        "baseline_seconds": round(base["seconds"], 3), "tamis_seconds": round(ours["seconds"], 3),
        "ratio_baseline_over_tamis": round(base["seconds"] / ours["seconds"], 3),
        "baseline_peak_mb": round(base["peak_mb_above_data"], 1),
        "tamis_peak_mb": round(ours["peak_mb_above_data"], 1),
        "baseline_correct_split_share": round(base["correct_split_share"], 4),
        "tamis_correct_split_share": round(ours["correct_split_share"], 4),
        "malformed": ours["malformed"],
        "baseline_malformed_passed_on": base["malformed_passed_on"],
        "tamis_malformed_passed_on": ours["malformed_passed_on"],
    }))  # fmt: skip


if __name__ == "__main__":
    main()
