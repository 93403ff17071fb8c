"""datatrove's 4-stage local MinHash dedup on a folder of JSONL shards (run with datatrove's python).

Not a benchmark by itself: `bench_out_of_core.py` runs it as a subprocess with the interpreter of
the venv where datatrove is installed (`--datatrove-python`), so datatrove never enters tamis' venv.
Stages as in datatrove's own example: signatures (one task per shard), buckets (one task per
band), clustering (one task), filtering (one task per shard, kept and removed documents written
as plain JSONL with their cluster id). Shingles are made the same as tamis': datatrove's text
simplification (lower case, no punctuation) then runs of Unicode letters/digits as words, word
n-grams. Prints one JSON line: wall seconds, documents, removed, peak RSS (this process and its
largest child) and the path of `clusters.npy` (doc id, cluster id; -1 = no cluster).

    /work/dtvenv/bin/python benchmarks/_datatrove_minhash.py --input SHARDS --work DIR
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import time
from pathlib import Path

import numpy as np
import regex
from datatrove.data import Document
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.hashing import HashConfig
from datatrove.utils.word_tokenizers import WordTokenizer

TOKEN = regex.compile(r"[\p{L}\p{N}]+")


class LetterDigitRuns(WordTokenizer):
    """Words = runs of Unicode letters/digits (tamis' word shingles)."""

    def word_tokenize(self, text: str) -> list[str]:
        return TOKEN.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in TOKEN.finditer(text)]


def _with_id(writer: object, doc: Document) -> dict:
    """The written record: datatrove's default (text, metadata) plus the document id."""
    return {"id": doc.id, "text": doc.text, "metadata": doc.metadata}


def run(args: argparse.Namespace) -> dict:
    work = Path(args.work)
    shards = sorted(Path(args.input).glob("*.jsonl"))
    config = MinhashConfig(
        n_grams=args.ngram,
        num_buckets=args.bands,
        hashes_per_bucket=args.rows,
        seed=args.seed,
        hash_config=HashConfig(precision=64),
    )
    tok = LetterDigitRuns("en")

    def reader() -> JsonlReader:
        return JsonlReader(str(args.input), glob_pattern="*.jsonl", id_key="id")

    n, w = len(shards), args.workers
    stage1 = LocalPipelineExecutor(
        pipeline=[reader(), MinhashDedupSignature(str(work / "sigs"), config=config, language=tok)],
        tasks=n,
        workers=w,
        start_method="fork",  # workers are children: their CPU is counted
        logging_dir=str(work / "logs1"),
    )
    stage2 = LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
        tasks=config.num_buckets,
        workers=w,
        start_method="fork",  # workers are children: their CPU is counted
        logging_dir=str(work / "logs2"),
        depends=stage1,
    )
    stage3 = LocalPipelineExecutor(
        pipeline=[
            MinhashDedupCluster(
                str(work / "buckets"), str(work / "remove"), config=config, save_cluster_id=True
            )
        ],
        tasks=1,
        start_method="fork",  # workers are children: their CPU is counted
        logging_dir=str(work / "logs3"),
        depends=stage2,
    )
    stage4 = LocalPipelineExecutor(
        pipeline=[
            reader(),
            MinhashDedupFilter(
                str(work / "remove"),
                exclusion_writer=JsonlWriter(
                    str(work / "removed"), compression=None, adapter=_with_id
                ),
                load_cluster_ids=True,
            ),
            JsonlWriter(str(work / "kept"), compression=None, adapter=_with_id),
        ],
        tasks=n,
        workers=w,
        start_method="fork",  # workers are children: their CPU is counted
        logging_dir=str(work / "logs4"),
        depends=stage3,
    )
    t0 = time.perf_counter()
    stage4.run()
    seconds = time.perf_counter() - t0
    ids, clusters, removed = [], [], 0
    for kind in ("kept", "removed"):
        for f in sorted((work / kind).glob("*.jsonl*")):
            opener = gzip.open if f.suffix == ".gz" else open
            with opener(f, "rt") as fh:
                for line in fh:
                    rec = json.loads(line)
                    ids.append(int(rec["id"]))
                    clusters.append(int(rec.get("metadata", {}).get("minhash_cluster_id", -1)))
                    removed += kind == "removed"
    out = work / "clusters.npy"
    np.save(out, np.array([ids, clusters], dtype=np.int64))
    cpu = sum(
        getattr(resource.getrusage(who), f)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )
    peak_kb = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    return {
        "seconds": seconds,
        "docs": len(ids),
        "removed": removed,
        "peak_rss_mb": peak_kb / 1024,
        "cpu_seconds": cpu,
        "clusters": str(out),
        "config": str(config),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--input", required=True, help="folder of *.jsonl shards (fields id, text)")
    ap.add_argument("--work", required=True, help="empty folder for datatrove's files")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ngram", type=int, default=5)
    ap.add_argument("--bands", type=int, default=21)
    ap.add_argument("--rows", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    print(json.dumps(run(ap.parse_args())), flush=True)


if __name__ == "__main__":
    main()
