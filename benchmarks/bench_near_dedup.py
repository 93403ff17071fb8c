"""Near dedup, 100k documents: tamis (MinHash + LSH + exact Jaccard) vs datasketch MinHash + MinHashLSH.

Corpus: the SMS Spam Collection (../shared/datasets) grown to 100k documents by controlled edits of
random messages (case/punctuation changes, a word appended, dropped, duplicated or replaced), so
there are many pairs near the 0.8 threshold. Both methods get the same word 5-gram shingles, the same
num_perm (128) and threshold (0.8); both are timed end to end from the raw texts (shingling
included), each in a fresh process, with its peak memory above the loaded corpus. Ground truth: the
exact Jaccard of every pair sharing a shingle (sparse product of the shingle matrix).

    .venv/bin/python benchmarks/bench_near_dedup.py [--docs 100000]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (  # noqa: E402
    SHARED_DATASETS,
    Timer,
    emit,
    in_fresh_process,
    peak_mb_above,
    rss_kb,
    versus,
)

SMS = SHARED_DATASETS / "sms_spam" / "SMSSpamCollection.tsv"
NGRAM, NUM_PERM, THRESHOLD = 5, 128, 0.8
TOKEN = re.compile(r"[^\W_]+")


def build_corpus(n_docs: int, seed: int = 0) -> list[str]:
    import polars as pl

    base = pl.read_csv(SMS, separator="\t", quote_char=None)["SMS"].to_list()
    rng = np.random.default_rng(seed)
    vocab = [w for text in base[:2000] for w in text.split()]
    docs = list(base)
    while len(docs) < n_docs:
        words = base[int(rng.integers(len(base)))].split()
        kind = int(rng.integers(6))
        if kind == 0:
            words = [w.upper() if rng.random() < 0.3 else w for w in words]
        elif kind == 1:
            words = [*words, vocab[int(rng.integers(len(vocab)))]]
        elif kind == 2 and len(words) > 1:
            words = words[:-1]
        elif kind == 3 and words:
            i = int(rng.integers(len(words)))
            words = words[: i + 1] + words[i:]
        elif kind == 4 and words:
            words[int(rng.integers(len(words)))] = vocab[int(rng.integers(len(vocab)))]
        else:
            words = [w + ("!" if rng.random() < 0.2 else "") for w in words]
        docs.append(" ".join(words))
    return docs[:n_docs]


def py_shingles(text: str) -> set[str]:
    toks = TOKEN.findall(unicodedata.normalize("NFKC", text).lower())
    if len(toks) >= NGRAM:
        return {" ".join(toks[i : i + NGRAM]) for i in range(len(toks) - NGRAM + 1)}
    return {" ".join(toks)} if toks else set()


def ground_truth(docs: list[str]) -> set[tuple[int, int]]:
    import scipy.sparse as sp

    vocab: dict[str, int] = {}
    rows, cols = [], []
    sizes = np.zeros(len(docs))
    for i, text in enumerate(docs):
        s = py_shingles(text)
        sizes[i] = len(s)
        for g in s:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(docs), len(vocab)))
    xt = x.T.tocsr()
    truth: set[tuple[int, int]] = set()
    for lo in range(0, len(docs), 5000):
        block = (x[lo : lo + 5000] @ xt).tocoo()
        r, c, v = block.row + lo, block.col, block.data
        keep = r < c
        r, c, v = r[keep], c[keep], v[keep]
        jac = v / (sizes[r] + sizes[c] - v)
        ok = jac >= THRESHOLD
        truth.update(zip(r[ok].tolist(), c[ok].tolist(), strict=True))
    return truth


def _run(method: str, path: str, queue: Any) -> None:
    import polars as pl

    texts = pl.read_parquet(path)["text"]
    from datasketch import MinHash, MinHashLSH

    from tamis.curate.dedup import expand_pairs, text_pairs

    base = rss_kb("VmRSS:")
    if method == "tamis":
        with Timer() as timer:
            tp = text_pairs(texts, ngram=NGRAM, num_perm=NUM_PERM, threshold=THRESHOLD, seed=0)
            pairs = expand_pairs(tp)  # every pair, as datasketch's output: timed too
        found = {(int(a), int(b)) for a, b in pairs}
        info = {
            k: tp.info[k] for k in ("bands", "rows_per_band", "candidate_pairs", "verified_pairs")
        }
    else:
        with Timer() as timer:
            lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
            sigs = []
            for i, text in enumerate(texts.to_list()):
                m = MinHash(num_perm=NUM_PERM, seed=1)
                m.update_batch([g.encode("utf8") for g in py_shingles(text)])
                lsh.insert(i, m)
                sigs.append(m)
            found = set()
            for i, m in enumerate(sigs):
                for j in lsh.query(m):
                    if j != i:
                        found.add((min(i, j), max(i, j)))
        info = {"bands": lsh.b, "rows_per_band": lsh.r}
    peak_mb = peak_mb_above(base)
    queue.put({"seconds": timer.seconds, "found": sorted(found), "peak_mb": peak_mb, **info})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=100_000)
    args = parser.parse_args()
    import polars as pl

    docs = build_corpus(args.docs)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "corpus.parquet")
        pl.DataFrame({"text": docs}).write_parquet(path)
        tamis = in_fresh_process(_run, "tamis", path)
        base = in_fresh_process(_run, "datasketch", path)
    truth = ground_truth(docs)

    def quality(found: list[tuple[int, int]]) -> tuple[float, float]:
        f = set(map(tuple, found))
        hit = len(truth & f)  # type: ignore[operator]
        return hit / max(len(truth), 1), hit / max(len(f), 1)

    t_rec, t_prec = quality(tamis["found"])
    b_rec, b_prec = quality(base["found"])
    emit(
        {
            "bench": "near_dedup_text",
            "docs": args.docs,
            "ngram_words": NGRAM,
            "num_perm": NUM_PERM,
            "threshold": THRESHOLD,
            "true_pairs": len(truth),
            "baseline": "datasketch MinHash + MinHashLSH",
            **versus("seconds", base["seconds"], tamis["seconds"]),
            "speedup": round(base["seconds"] / tamis["seconds"], 2),
            "tamis_docs_per_s": round(args.docs / tamis["seconds"]),
            "baseline_docs_per_s": round(args.docs / base["seconds"]),
            "tamis_recall": round(t_rec, 4),
            "tamis_precision": round(t_prec, 4),
            "baseline_recall": round(b_rec, 4),
            "baseline_precision": round(b_prec, 4),
            "tamis_peak_mb": round(tamis["peak_mb"], 1),
            "baseline_peak_mb": round(base["peak_mb"], 1),
            "tamis_bands_rows": [tamis["bands"], tamis["rows_per_band"]],
            "baseline_bands_rows": [base["bands"], base["rows_per_band"]],
            "tamis_candidate_pairs": tamis["candidate_pairs"],
        }
    )


if __name__ == "__main__":
    main()
