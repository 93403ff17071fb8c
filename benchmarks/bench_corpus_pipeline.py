"""Issue #15's whole pipeline through the real CLI: a web-like corpus several times the memory limit
built by `tamis build --memory-limit`, watched from outside; then a no-op rebuild, and the same
pipeline on a corpus that fits in memory under a small and a huge limit and in memory (`Step.run`).

Pipeline (one YAML): source (JSONL) -> normalize -> dedup(text) -> near_dedup(text) -> leakage
(`against:` a held-out slice, `text:` set: exact, 13-gram contamination and near overlap; the
contaminated rows are dropped).

1. Big: a corpus of `--corpus-factor` x `--memory-limit` bytes (`_corpus.generate`: ~10% exact and
   ~10% near copies planted; `--corpus PATH` is used as it is, or generated there and kept) and a
   held-out JSONL of `--eval-docs` documents: a third copied from the corpus, a third near copies
   (1% of the words replaced), a third fresh (a corpus document's words shuffled). leakage holds
   the held-out slice in memory and refuses one over half the limit (3,000 documents need 256MB).
   `tamis build --json` runs in a subprocess;
   every ~0.2 s the whole process tree is sampled from /proc (VmRSS and RssAnon summed, VmHWM), and
   every ~1 s the bytes under the store's `tmp/` (spill and parts being written). A step's window
   ends when its version appears in `versions/`, so each peak is given per step as well. Reported:
   exit code and whether it was killed, time, rows in/out, docs/s per step, peak RSS and private
   memory against the limit (target <= 1.15), the kernel's peak RSS (wait4's ru_maxrss), peak tmp
   bytes and the engine's own peak spill, MB/s of JSONL.
2. No-op rebuild: the same command again (time, every step cached; target < 2 s), then once more in
   a process that counts every file the store hashes and reads its own `rchar` (/proc/self/io)
   against the bytes of the parts on disk.
3. Fitting corpus: the first `--fit-docs` documents (and their own held-out slice) built under
   `--fit-limit` and under `--big-limit` (nothing spills), and the same steps in memory (`run_step`,
   `write_frame_parts`) in a fresh process: every version's content hash must be identical;
   near_dedup docs/s of each (bounded / in-memory, target >= 0.8).

Section 3 runs first (it is short); `--max-build-seconds` kills a big build that would overrun (the
figures of the steps it finished are kept). Prints a table on stderr and one JSON line with every
figure on stdout.

    POLARS_MAX_THREADS=2 nice -n 10 .venv/bin/python benchmarks/bench_corpus_pipeline.py \\
        --memory-limit 256MB --corpus-factor 8 --work /tmp/bench
    ... --memory-limit 64MB --corpus-factor 2 --eval-docs 300 --fit-docs 2000 --fit-limit 64MB
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import AnonPeak, Timer, emit, in_fresh_process  # noqa: E402
from _corpus import generate  # noqa: E402

TAMIS = Path(sys.executable).with_name("tamis")
MB = 1e6
STEPS: dict[str, dict[str, Any]] = {
    "clean": {"use": "normalize", "input": "corpus"},
    "unique": {"use": "dedup", "input": "clean", "params": {"columns": ["text"]}},
    "near": {"use": "near_dedup", "input": "unique", "params": {"column": "text"}},
    "contam": {
        "use": "leakage",
        "input": "near",
        "against": ["heldout"],
        "params": {"text": "text", "columns": ["text"], "action": "drop"},
    },
}


# ---- the data ---------------------------------------------------------------------------------
def _random_lines(path: Path, k: int, rng: random.Random) -> list[str]:
    """`k` texts from lines at random offsets of a JSONL (never reading the whole file)."""
    size = path.stat().st_size
    texts: list[str] = []
    with open(path, "rb") as fh:
        while len(texts) < k:
            fh.seek(rng.randrange(size))
            fh.readline()  # the rest of a line cut by the offset
            line = fh.readline()
            if not line:  # past the last line: the first one
                fh.seek(0)
                line = fh.readline()
            texts.append(json.loads(line)["text"])
    return texts


def write_heldout(corpus: Path, out: Path, docs: int, seed: int = 1) -> dict[str, int]:
    """An eval JSONL (`eval_id`, `text`): a third exact copies of corpus documents, a third near
    copies (1% of the words replaced), a third fresh (a document's words shuffled)."""
    rng = random.Random(seed)
    base = _random_lines(corpus, docs, rng)
    truth = {"exact": 0, "near": 0, "fresh": 0}
    with open(out, "w") as fh:
        for i, text in enumerate(base):
            kind = ("exact", "near", "fresh")[i % 3]
            words = text.split(" ")
            if kind == "near":
                for _ in range(max(1, len(words) // 100)):
                    words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
                text = " ".join(words)
            elif kind == "fresh":
                rng.shuffle(words)
                text = " ".join(words)
            truth[kind] += 1
            fh.write(json.dumps({"eval_id": i, "text": text}) + "\n")
    return truth


def head_lines(src: Path, out: Path, docs: int) -> int:
    """The first `docs` lines of `src` into `out`; returns the lines written."""
    n = 0
    with open(src) as fin, open(out, "w") as fout:
        for n, line in enumerate(fin, 1):  # noqa: B007
            fout.write(line)
            if n >= docs:
                break
    return n


def write_pipeline(folder: Path, corpus: Path, heldout: Path) -> Path:
    spec = {
        "name": "corpus_bench",
        "seed": 0,
        "sources": {"corpus": {"path": str(corpus)}, "heldout": {"path": str(heldout)}},
        "steps": STEPS,
    }
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---- watching a build -------------------------------------------------------------------------
def _status_kb(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and VmHWM of one process (kB; {} once it is gone)."""
    found: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon", "VmHWM"):
                    found[key] = int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return found


def _tree(pid: int) -> list[int]:
    try:
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    except psutil.NoSuchProcess:
        return [pid]


def dir_bytes(path: Path) -> int:
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        else:
                            total += e.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
        except FileNotFoundError:
            pass
    return total


class Window:
    """Peaks over a stretch of the build (the whole build, or one step's window)."""

    def __init__(self) -> None:
        self.rss_kb = self.anon_kb = self.tmp_bytes = 0
        self.started = time.perf_counter()

    def add(self, rss: int, anon: int, tmp: int) -> None:
        self.rss_kb, self.anon_kb = max(self.rss_kb, rss), max(self.anon_kb, anon)
        self.tmp_bytes = max(self.tmp_bytes, tmp)

    def to_json(self) -> dict[str, Any]:
        return {
            "window_seconds": round(time.perf_counter() - self.started, 1),
            "peak_rss_mb": round(self.rss_kb * 1024 / MB, 1),
            "peak_anon_mb": round(self.anon_kb * 1024 / MB, 1),
            "peak_tmp_mb": round(self.tmp_bytes / MB, 1),
        }


def _new_versions(versions: Path, seen: set[str]) -> list[str]:
    names = []
    for vid in sorted(set(os.listdir(versions)) - seen) if versions.exists() else []:
        seen.add(vid)
        try:
            names.append(json.loads((versions / vid / "manifest.json").read_text())["name"])
        except (OSError, ValueError):
            seen.discard(vid)  # still being renamed in: next sample
    return [n.split("/")[-1] for n in names]


def watched_build(
    args: list[str], store: Path, log: Path, every: float = 0.2, max_seconds: float | None = None
) -> dict[str, Any]:
    """Run `tamis build ARGS --store STORE --json` and watch it; the build's JSON and the peaks.
    A build still running after `max_seconds` is killed (SIGKILL; reported as `timed_out`)."""
    seen = set(os.listdir(store / "versions")) if (store / "versions").exists() else set()
    total, window, steps = Window(), Window(), {}
    hwm: dict[int, int] = {}
    cmd = [str(TAMIS), "build", *args, "--store", str(store), "--json"]
    t0, tmp, tick = time.perf_counter(), 0, 0
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err)
        timed_out = False
        while True:
            done, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if done:
                break
            if max_seconds and time.perf_counter() - t0 > max_seconds and not timed_out:
                timed_out = True
                proc.kill()
            rss = anon = 0
            for pid in _tree(proc.pid):
                s = _status_kb(pid)
                rss, anon = rss + s.get("VmRSS", 0), anon + s.get("RssAnon", 0)
                hwm[pid] = max(hwm.get(pid, 0), s.get("VmHWM", 0))
            if tick % max(1, round(1.0 / every)) == 0:
                tmp = dir_bytes(store / "tmp")
            tick += 1
            total.add(rss, anon, tmp)
            window.add(rss, anon, tmp)
            finished = _new_versions(store / "versions", seen)
            if finished:
                steps["+".join(finished)] = window.to_json()
                window = Window()
            time.sleep(every)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t0
    load = os.getloadavg()  # the 1, 5 and 15-minute means as the build ends
    text = log.with_suffix(".out").read_text()
    stderr = log.with_suffix(".err").read_text()
    errors = [ln.strip() for ln in stderr.splitlines() if ln.strip().startswith(("error", "fix"))]
    return {
        "cmd": " ".join(cmd),
        "exit_code": proc.returncode,
        "killed": proc.returncode < 0,
        "timed_out": timed_out,
        "error": " ".join(errors)[:600] or None,
        "wall_seconds": round(seconds, 2),
        "build": json.loads(text) if proc.returncode == 0 and text.strip() else None,
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "loadavg_during": [round(x, 2) for x in load],
        "kernel_peak_rss_mb": round(usage.ru_maxrss * 1024 / MB, 1),
        "max_vmhwm_mb": round(max(hwm.values(), default=0) * 1024 / MB, 1),
        **total.to_json(),
        "windows": {**steps, **({"(unfinished)": window.to_json()} if proc.returncode else {})},
    }


def manifests(store: Path) -> dict[str, dict[str, Any]]:
    """Every version of the store by its step name (the latest when rebuilt)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((store / "versions").glob("*/manifest.json"), key=os.path.getmtime):
        m = json.loads(path.read_text())
        found[m["name"].split("/")[-1]] = m
    return found


def step_rows(run: dict[str, Any], store: Path) -> list[dict[str, Any]]:
    """Per version (sources too): seconds, rows in/out, docs/s and the window's peaks."""
    by_name = manifests(store)
    by_id = {m["id"]: m for m in by_name.values()}
    built = {s["step"]: s for s in (run["build"] or {}).get("steps", [])}
    rows = []
    for name, m in by_name.items():
        parents = [(p["role"], by_id[p["id"]]["rows"]) for p in m["parents"] if p["id"] in by_id]
        rows_in = sum(n for role, n in parents if role == "input")
        step = built.get(name, {})
        window: dict[str, Any] = next(
            (w for k, w in run["windows"].items() if name in k.split("+")), {}
        )
        secs = step.get("seconds") or window.get("window_seconds")
        rows.append(
            {
                "step": name,
                "type": m["step"]["type"],
                "status": step.get("status", "source" if not m["parents"] else "done"),
                "seconds": secs,
                "rows_in": rows_in,
                "rows_out": m["rows"],
                "against_rows": sum(n for role, n in parents if role != "input") or None,
                "docs_per_s": round(rows_in / secs, 1) if secs and rows_in else None,
                "parts": len(m.get("parts") or []),
                "parquet_mb": round(sum(p["bytes"] for p in m.get("parts") or []) / MB, 1),
                **window,
            }
        )
    return rows


# ---- the no-op rebuild ------------------------------------------------------------------------
COUNT_HASHES = """
import json, sys, time
from tamis.pipelines import hashing
from tamis.pipelines.engines import parts
hashed = []
real_chunk, real_part = hashing._chunk_digest, parts._sha256_file
def chunk(path, offset, size):
    hashed.append(str(path))
    return real_chunk(path, offset, size)
def part(path):
    hashed.append(str(path))
    return real_part(path)
hashing._chunk_digest, parts._sha256_file = chunk, part
from tamis.cli import app
t0 = time.perf_counter()
try:
    app(sys.argv[2:], standalone_mode=False)
finally:
    io = dict(line.split(": ") for line in open("/proc/self/io"))
    with open(sys.argv[1], "w") as fh:
        json.dump({"seconds": time.perf_counter() - t0, "hashed": sorted(set(hashed)),
                   "rchar": int(io["rchar"]), "read_bytes": int(io["read_bytes"])}, fh)
"""


def noop_section(
    pipeline: Path, store: Path, limit: str, targets: list[str], work: Path
) -> dict[str, Any]:
    """The same build again: its time and statuses; then a run that counts the files hashed."""
    args = [str(pipeline), *targets, "--memory-limit", limit]
    again = watched_build(args, store, work / "noop")
    statuses = [s["status"] for s in (again["build"] or {}).get("steps", [])]
    counted = work / "noop_count.json"
    cmd = [sys.executable, "-c", COUNT_HASHES, str(counted), "build", *args, "--store", str(store)]
    proc = subprocess.run([*cmd, "--json"], capture_output=True, text=True)
    c = json.loads(counted.read_text()) if counted.exists() else {}
    t0 = time.perf_counter()
    subprocess.run([str(TAMIS), "--help"], capture_output=True)
    bare = time.perf_counter() - t0
    parts = list((store / "versions").glob("*/data/*.parquet"))
    return {
        "noop_targets": targets or "all",
        "noop_exit_code": again["exit_code"],
        "noop_wall_seconds": again["wall_seconds"],
        "noop_build_seconds": (again["build"] or {}).get("seconds"),
        "noop_bare_cli_seconds": round(bare, 2),  # `tamis --help`: interpreter and CLI imports
        "noop_all_cached": bool(statuses) and all(s == "cached" for s in statuses),
        "noop_statuses": statuses,
        "noop_peak_rss_mb": again["peak_rss_mb"],
        "noop_counted_exit_code": proc.returncode,
        "noop_counted_seconds": round(c.get("seconds", -1), 3),
        "noop_files_hashed": len(c.get("hashed", [])),
        "noop_parts_hashed": sum(1 for h in c.get("hashed", []) if h.endswith(".parquet")),
        "noop_rchar_mb": round(c.get("rchar", 0) / MB, 1),
        "noop_parts_on_disk": len(parts),
        "noop_parts_mb_on_disk": round(sum(p.stat().st_size for p in parts) / MB, 1),
    }


# ---- the fitting corpus: bounded, huge limit, in memory ---------------------------------------
def _in_memory(store_dir: str, out_dir: str, queue: Any) -> None:
    """Every step's `run` on in-memory frames (the sources read from the bounded build's store):
    the content hash of each output written as parts, and each step's time and peak memory."""
    import polars as pl

    from tamis.pipelines.call import run_step
    from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
    from tamis.pipelines.store import Store

    store = Store(Path(store_dir))
    found = manifests(Path(store_dir))
    frames = {name: store.read(found[name]["id"]) for name in ("corpus", "heldout")}
    result: dict[str, Any] = {}
    for name, spec in STEPS.items():
        inputs: dict[str, Any] = {"input": frames[spec["input"]]}
        if "against" in spec:
            inputs["against"] = [frames[a] for a in spec["against"]]
        with Timer() as t, AnonPeak() as anon:
            out = run_step(spec["use"], inputs, spec.get("params"), seed=0)
        frame = out.frames["data"]
        assert isinstance(frame, pl.DataFrame)
        frames[name] = frame
        with Timer() as w:
            parts = write_frame_parts(frames[name], Path(out_dir) / name)
        result[name] = {
            "seconds": round(t.seconds, 2),
            "write_seconds": round(w.seconds, 2),
            "rows_in": inputs["input"].height,
            "rows_out": frames[name].height,
            "content_hash": parts_hash(parts),
            "peak_anon_mb": round(anon.mb * 2**20 / MB, 1),
        }
    queue.put(result)


def _near_alone(store_dir: str, work_dir: str, mode: str, limit: str, queue: Any) -> None:
    """The near step alone on the fitting build's `unique` version, in this fresh process, after
    a warm-up on 200 rows (numba kernels loaded, matplotlib imported): `mode` "memory" (`run` on
    the frame read before timing, then its parts written, timed apart) or "bounded" (the bounded
    engine's `run_step` under `limit`, spilling and writing its parts). Wall and CPU seconds
    (`process_time`: every thread of the process)."""
    import polars as pl

    from tamis.curate.dedup import NearDedupConfig
    from tamis.pipelines.call import run_step
    from tamis.pipelines.engines.local import BoundedEngine
    from tamis.pipelines.engines.memory import parse_size
    from tamis.pipelines.engines.parts import parts_hash, write_frame_parts
    from tamis.pipelines.steps.base import StepContext
    from tamis.pipelines.steps.near_dedup import NearDedup
    from tamis.pipelines.store import Store

    store = Store(Path(store_dir))
    version = manifests(Path(store_dir))["unique"]["id"]
    work = Path(work_dir) / f"{mode}-{os.getpid()}"
    (work / "art").mkdir(parents=True)
    params = {"column": "text"}
    ctx = StepContext(step="near", pipeline="bench", seed=0, artifacts_dir=work / "art")
    run_step("near_dedup", {"input": store.scan(version).head(200).collect()}, params, seed=0)
    result: dict[str, Any] = {}
    if mode == "memory":
        frame = store.read(version)
        with Timer() as t:
            out = run_step("near_dedup", {"input": frame}, params, seed=0).frames["data"]
        assert isinstance(out, pl.DataFrame)
        with Timer() as w:
            parts = write_frame_parts(out, work / "parts")
        result = {"write_seconds": w.seconds, "write_cpu_seconds": w.cpu_seconds}
    else:
        engine = BoundedEngine(memory_limit=parse_size(limit), spill_root=work / "spill")
        engine.use(work / "spill", lambda *a, **k: None)
        with Timer() as t:
            parts, _ = engine.run_step(
                NearDedup(), {"input": store.scan(version)}, NearDedupConfig(column="text"), ctx,
                work / "parts",
            )  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    queue.put({**result, "seconds": t.seconds, "cpu_seconds": t.cpu_seconds,
               "content_hash": parts_hash(parts)})  # fmt: skip


def near_alone(store: Path, work: Path, limit: str, repeats: int) -> dict[str, Any]:
    """`_near_alone` both ways, alternated `repeats` times (fresh processes): the best (least
    disturbed) wall and CPU seconds of each and their ratios (bounded docs/s over in-memory)."""
    runs: dict[str, list[dict[str, Any]]] = {"bounded": [], "memory": []}
    for _ in range(repeats):
        for mode in runs:
            runs[mode].append(in_fresh_process(_near_alone, str(store), str(work), mode, limit))
    best = {
        f"{mode}_{k}": round(min(r[k] for r in rs), 2)
        for mode, rs in runs.items()
        for k in rs[0]
        if k != "content_hash"
    }
    b, m = best["bounded_seconds"], best["memory_seconds"]
    bc, mc = best["bounded_cpu_seconds"], best["memory_cpu_seconds"]
    mw, mwc = best["memory_write_seconds"], best["memory_write_cpu_seconds"]
    return {
        "fit_near_alone_repeats": repeats,
        "fit_near_alone_best": best,
        "fit_near_alone_hashes_equal": len({r["content_hash"] for rs in runs.values() for r in rs})
        == 1,
        "fit_near_alone_bounded_over_in_memory": round(m / b, 3),
        "fit_near_alone_bounded_over_in_memory_with_write": round((m + mw) / b, 3),
        "fit_near_alone_cpu_bounded_over_in_memory": round(mc / bc, 3),
        "fit_near_alone_cpu_bounded_over_in_memory_with_write": round((mc + mwc) / bc, 3),
        "fit_near_alone_loadavg": os.getloadavg(),
    }


def _same(a: dict[str, str], b: dict[str, str]) -> bool:
    """The versions both sides have are identical (the names compared are reported apart)."""
    shared = set(a) & set(b)
    return bool(shared) and all(a[k] == b[k] for k in shared)


def fit_section(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, Any]:
    fit = work / "fit"
    fit.mkdir(exist_ok=True)
    docs = head_lines(corpus, fit / "corpus.jsonl", args.fit_docs)
    write_heldout(fit / "corpus.jsonl", fit / "heldout.jsonl", args.eval_docs)
    pipeline = write_pipeline(fit, fit / "corpus.jsonl", fit / "heldout.jsonl")
    runs, hashes = {}, {}
    for tag, limit in (("bounded", args.fit_limit), ("huge", args.big_limit)):
        store = fit / f"store_{tag}"
        runs[tag] = watched_build([str(pipeline), "--memory-limit", limit], store, fit / tag)
        runs[tag]["steps"] = step_rows(runs[tag], store)
        hashes[tag] = {k: m["content_hash"] for k, m in manifests(store).items()}
    mem = in_fresh_process(_in_memory, str(fit / "store_bounded"), str(fit / "mem"))
    hashes["in_memory"] = {k: v["content_hash"] for k, v in mem.items()}
    near: dict[str, dict[str, Any]] = {
        t: next((s for s in runs[t]["steps"] if s["step"] == "near"), {}) for t in runs
    }
    near_mem = mem["near"]["rows_in"] / mem["near"]["seconds"]
    # the in-memory engine also wrote its output: the step with its parts, like a build's step time
    near_mem_io = mem["near"]["rows_in"] / (mem["near"]["seconds"] + mem["near"]["write_seconds"])
    bounded_dps = near["bounded"].get("docs_per_s")
    alone = near_alone(fit / "store_bounded", fit / "alone", args.fit_limit, args.fit_repeats)
    return {
        **alone,
        "fit_docs": docs,
        "fit_bytes": (fit / "corpus.jsonl").stat().st_size,
        "fit_limit": args.fit_limit,
        "fit_big_limit": args.big_limit,
        "fit_runs": {tag: {k: v for k, v in r.items() if k != "build"} for tag, r in runs.items()},
        "fit_in_memory": mem,
        "fit_exit_codes": {tag: r["exit_code"] for tag, r in runs.items()},
        "fit_hashes_equal_bounded_vs_huge": _same(hashes["bounded"], hashes["huge"]),
        "fit_hashes_equal_bounded_vs_in_memory": _same(hashes["bounded"], hashes["in_memory"]),
        "fit_hashes_equal_huge_vs_in_memory": _same(hashes["huge"], hashes["in_memory"]),
        "fit_versions_compared": {t: sorted(h) for t, h in hashes.items()},
        "fit_hash_mismatches": sorted(
            k for k in hashes["bounded"] if len({h.get(k) for h in hashes.values() if k in h}) > 1
        ),
        "fit_near_docs_per_s_bounded": bounded_dps,
        "fit_near_docs_per_s_huge_limit": near["huge"].get("docs_per_s"),
        "fit_near_docs_per_s_in_memory": round(near_mem, 1),
        "fit_near_bounded_over_in_memory": bounded_dps and round(bounded_dps / near_mem, 3),
        "fit_near_docs_per_s_in_memory_with_write": round(near_mem_io, 1),
        "fit_near_bounded_over_in_memory_with_write": bounded_dps
        and round(bounded_dps / near_mem_io, 3),
    }


# ---- the big build and the report -------------------------------------------------------------
def big_section(args: argparse.Namespace, corpus: Path, work: Path) -> dict[str, Any]:
    from tamis.pipelines.engines.memory import parse_size

    limit = parse_size(args.memory_limit)
    truth = write_heldout(corpus, work / "heldout.jsonl", args.eval_docs)
    pipeline = write_pipeline(work, corpus, work / "heldout.jsonl")
    store = work / "store"
    limit_args = [str(pipeline), "--memory-limit", args.memory_limit]
    run = watched_build(limit_args, store, work / "big", max_seconds=args.max_build_seconds)
    steps = step_rows(run, store)
    done = [s["step"] for s in steps if s["step"] in STEPS]
    leak = manifests(store).get("contam", {}).get("report", {})
    seconds = (run["build"] or {}).get("seconds") or run["wall_seconds"]
    record = {
        "limit_bytes": limit,
        "heldout_docs": args.eval_docs,
        "heldout_planted": truth,
        "exit_code": run["exit_code"],
        "killed": run["killed"],
        "timed_out": run["timed_out"],
        "max_build_seconds": args.max_build_seconds,
        "error": run["error"],
        "seconds": seconds,
        "wall_seconds": run["wall_seconds"],
        "cpu_seconds": run["cpu_seconds"],
        "loadavg_at_end_of_build": run["loadavg_during"],
        "mb_per_s": round(corpus.stat().st_size / MB / seconds, 2)
        if not run["exit_code"]
        else None,
        "peak_rss_mb": run["peak_rss_mb"],
        "peak_anon_mb": run["peak_anon_mb"],
        "kernel_peak_rss_mb": run["kernel_peak_rss_mb"],
        "rss_over_limit": round(run["peak_rss_mb"] * MB / limit, 3),
        "anon_over_limit": round(run["peak_anon_mb"] * MB / limit, 3),
        "kernel_rss_over_limit": round(run["kernel_peak_rss_mb"] * MB / limit, 3),
        "within_limit_plus_15pct": run["kernel_peak_rss_mb"] * MB <= 1.15 * limit,
        "anon_within_limit_plus_15pct": run["peak_anon_mb"] * MB <= 1.15 * limit,
        "peak_tmp_mb": run["peak_tmp_mb"],
        "engine": (run["build"] or {}).get("engine"),
        "steps": steps,
        "unfinished_window": run["windows"].get("(unfinished)"),
        "removed_by_step": {s["step"]: s["rows_in"] - s["rows_out"] for s in steps if s["rows_in"]},
        "contamination": leak.get("against"),
        "leaked_rows": leak.get("leaked_rows"),
    }
    if "noop" not in args.skip:
        record.update(noop_section(pipeline, store, args.memory_limit, _targets(run, done), work))
    return record


def _targets(run: dict[str, Any], done: list[str]) -> list[str]:
    """No targets when the build succeeded; else the steps it finished (a no-op over those)."""
    return [] if run["exit_code"] == 0 else done


def table(record: dict[str, Any]) -> str:
    cols = ["step", "status", "seconds", "rows_in", "rows_out", "docs_per_s"]
    cols += ["peak_rss_mb", "peak_anon_mb", "peak_tmp_mb"]
    lines = ["  ".join(f"{c:>12}" for c in cols)]
    for s in record.get("big", {}).get("steps", []):
        lines.append("  ".join(f"{str(s.get(c, '')):>12}" for c in cols))
    big = record.get("big") or {"skipped": True}
    if big.get("unfinished_window"):
        lines.append(f"unfinished step window: {big['unfinished_window']}")
    lines += [f"{k}: {v}" for k, v in big.items() if k not in ("steps", "unfinished_window")]
    lines += [f"{k}: {v}" for k, v in record.items() if k.startswith("fit_") and k != "fit_runs"]
    return "\n".join(lines)


def make_corpus(args: argparse.Namespace, work: Path) -> tuple[Path, dict[str, Any]]:
    from tamis.pipelines.engines.memory import parse_size

    """The corpus: `--corpus` as it is when it exists (never overwritten), else generated."""
    limit = parse_size(args.memory_limit)
    corpus = args.corpus or work / "corpus.jsonl"
    counts_file = corpus.with_name(corpus.name + ".counts.json")
    t0 = time.perf_counter()
    if not corpus.exists():
        counts = generate(corpus, int(limit * args.corpus_factor), seed=0)
        counts_file.write_text(json.dumps(counts))
    counts = json.loads(counts_file.read_text()) if counts_file.exists() else {}
    return corpus, {
        "corpus_bytes": corpus.stat().st_size,
        "corpus_over_limit": round(corpus.stat().st_size / limit, 2),
        "corpus_docs": counts.get("docs"),
        "corpus_planted_exact": counts.get("exact"),
        "corpus_planted_near": counts.get("near"),
        "generate_seconds": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--memory-limit", default="256MB", help="the big build's --memory-limit")
    ap.add_argument("--corpus-factor", type=float, default=8.0, help="corpus bytes / limit")
    ap.add_argument(
        "--corpus", type=Path, default=None, help="use this JSONL (generated there when absent)"
    )
    ap.add_argument("--eval-docs", type=int, default=3000, help="documents of the held-out slice")
    ap.add_argument("--fit-docs", type=int, default=50_000, help="documents of the fitting corpus")
    ap.add_argument("--fit-limit", default="256MB", help="the fitting corpus' bounded limit")
    ap.add_argument("--big-limit", default="64GB", help="a limit under which nothing spills")
    ap.add_argument(
        "--fit-repeats",
        type=int,
        default=3,
        help="the fitting corpus' near step alone, bounded and in memory alternated, this many times",
    )
    ap.add_argument("--work", type=Path, default=None, help="parent of the work dir (default tmp)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (stores, logs)")
    ap.add_argument(
        "--max-build-seconds",
        type=float,
        default=None,
        help="kill the big build after this long (reported as timed_out; the no-op rebuild then "
        "covers the steps it finished)",
    )
    ap.add_argument(
        "--skip", choices=["big", "noop", "fit"], action="append", default=[], help="repeatable"
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_pipeline_", dir=args.work))
    print(f"work dir: {work}", file=sys.stderr)
    record: dict[str, Any] = {
        "bench": "corpus_pipeline",
        "memory_limit": args.memory_limit,
        "corpus_factor": args.corpus_factor,
        "polars_max_threads": os.environ.get("POLARS_MAX_THREADS"),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
    }
    try:
        corpus, info = make_corpus(args, work)
        record.update(info)
        if "fit" not in args.skip:  # first: it is short, and the big build may be cut off
            record.update(fit_section(args, corpus, work))
            record["loadavg_after_fit"] = os.getloadavg()
        if "big" not in args.skip:
            record["big"] = big_section(args, corpus, work)
        record["loadavg_end"] = os.getloadavg()
        print(table(record), file=sys.stderr)
        emit(record)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
