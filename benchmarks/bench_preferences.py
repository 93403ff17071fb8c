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
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Timer, emit, in_fresh_process, peak_mb_above, rss_kb, versus  # noqa: E402

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


def _run(method: str, rows: int, out: Any) -> None:
    import polars as pl
    from datasets import Dataset, disable_progress_bars
    from trl.data_utils import extract_prompt

    from tamis.curate.preferences import pairs_from_transcripts

    chosen, rejected, cut = make_rows(rows)  # libraries and data loaded before the baseline RSS
    base_rss = rss_kb("VmRSS")
    if method == "tamis":
        with Timer() as timer:
            res = pairs_from_transcripts(pl.DataFrame({"chosen": chosen, "rejected": rejected}))
        lens = dict(zip(res.pairs["source_row"].to_list(), res.pairs["prompt"].str.len_chars().to_list(), strict=True))  # fmt: skip
        got = [lens.get(i, -1) for i in range(rows)]
    else:
        disable_progress_bars()
        with Timer() as timer:
            ds = Dataset.from_dict({"chosen": chosen, "rejected": rejected}).map(extract_prompt)
        got = [len(p) for p in ds["prompt"]]
    malformed = sum(c == -1 for c in cut)
    correct = sum(g == c for g, c in zip(got, cut, strict=True) if c != -1)
    passed_bad = sum(g != -1 for g, c in zip(got, cut, strict=True) if c == -1)
    out.put({
        "method": method, "seconds": timer.seconds,
        "correct_split_share": correct / (rows - malformed),
        "malformed_passed_on": passed_bad, "malformed": malformed,
        "peak_mb_above_data": max(0.0, peak_mb_above(base_rss)),
    })  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=160_800)
    rows = ap.parse_args().rows
    base = in_fresh_process(_run, "trl_extract_prompt", rows)
    ours = in_fresh_process(_run, "tamis", rows)
    emit({
        "bench": "preference_transcripts", "rows": rows,
        "baseline": "trl.data_utils.extract_prompt via datasets.map",
        **versus("seconds", base["seconds"], ours["seconds"]),
        "ratio_baseline_over_tamis": round(base["seconds"] / ours["seconds"], 3),
        **versus("peak_mb", base["peak_mb_above_data"], ours["peak_mb_above_data"], 1),
        **versus("correct_split_share", base["correct_split_share"], ours["correct_split_share"], 4),
        "malformed": ours["malformed"],
        "baseline_malformed_passed_on": base["malformed_passed_on"],
        "tamis_malformed_passed_on": ours["malformed_passed_on"],
    })  # fmt: skip


if __name__ == "__main__":
    main()
