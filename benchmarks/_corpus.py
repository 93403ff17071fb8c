"""A web-like JSONL corpus of any size, written as a stream (never held), with planted duplicates.

Not a benchmark. Documents are sentences of Zipf-distributed words from a fixed vocabulary, of
log-normal length (median ~300 words, a long tail to a few thousand), with a URL and a domain.
About `exact` of the documents are byte-exact copies of an earlier one and `near` are edited copies
(a few words replaced, dropped or appended: word 5-gram Jaccard mostly above 0.8). The truth of
what was planted is returned (ids of exact and near copies and their originals) so recall can be
measured. Deterministic for a seed.

    python benchmarks/_corpus.py OUT.jsonl --gb 2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

VOCAB_SIZE = 50_000


def _vocab(rng: np.random.Generator) -> np.ndarray:
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    lengths = rng.integers(2, 11, VOCAB_SIZE)
    probs = np.linspace(2.0, 0.2, len(letters))
    probs /= probs.sum()
    return np.array(["".join(rng.choice(letters, n, p=probs)) for n in lengths])


def generate(
    path: Path,
    target_bytes: int,
    *,
    seed: int = 0,
    exact: float = 0.10,
    near: float = 0.10,
    keep_for_copies: int = 20_000,
) -> dict[str, int]:
    """Write documents until `target_bytes`; returns counts of what was planted."""
    rng = np.random.default_rng(seed)
    vocab = _vocab(rng)
    ranks = np.arange(1, VOCAB_SIZE + 1)
    zipf = 1.0 / ranks**1.05
    zipf /= zipf.sum()
    recent: list[str] = []  # a reservoir of earlier texts to copy from
    counts = {"docs": 0, "exact": 0, "near": 0, "bytes": 0}
    with open(path, "w", encoding="utf-8") as fh:
        while counts["bytes"] < target_bytes:
            block = 2000
            lengths = np.clip(rng.lognormal(5.7, 0.7, block).astype(int), 20, 6000)
            words = vocab[rng.choice(VOCAB_SIZE, int(lengths.sum()), p=zipf)]
            starts = np.concatenate([[0], np.cumsum(lengths)])
            kinds = rng.random(block)
            for i in range(block):
                if kinds[i] < exact and recent:
                    text = recent[int(rng.integers(len(recent)))]
                    counts["exact"] += 1
                elif kinds[i] < exact + near and recent:
                    base = recent[int(rng.integers(len(recent)))].split(" ")
                    for _ in range(max(1, len(base) // 100)):
                        j = int(rng.integers(len(base)))
                        op = int(rng.integers(3))
                        if op == 0:
                            base[j] = str(vocab[int(rng.integers(VOCAB_SIZE))])
                        elif op == 1 and len(base) > 20:
                            del base[j]
                        else:
                            base.append(str(vocab[int(rng.integers(VOCAB_SIZE))]))
                    text = " ".join(base)
                    counts["near"] += 1
                else:
                    text = " ".join(words[starts[i] : starts[i + 1]])
                    if len(recent) < keep_for_copies:
                        recent.append(text)
                    elif rng.random() < 0.05:
                        recent[int(rng.integers(keep_for_copies))] = text
                doc = counts["docs"]
                line = json.dumps(
                    {
                        "id": doc,
                        "url": f"https://site{doc % 997}.example/page/{doc}",
                        "text": text,
                    }
                )
                fh.write(line + "\n")
                counts["bytes"] += len(line) + 1
                counts["docs"] += 1
                if counts["bytes"] >= target_bytes:
                    break
    return counts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out", type=Path)
    ap.add_argument("--gb", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(json.dumps(generate(args.out, int(args.gb * 1e9), seed=args.seed)))


if __name__ == "__main__":
    main()
