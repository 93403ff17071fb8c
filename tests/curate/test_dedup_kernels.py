"""The numba kernels of text near dedup against an independent pure-Python computation.

Shingles (NFKC, lower case, runs of letters/digits, word or char n-grams), their hashes, MinHash
signatures and Jaccard similarities are recomputed here with Python's `re`, `unicodedata`, ints and
sets on real SMS messages and generated Unicode documents, and must equal the kernels' exactly.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import polars as pl
import pytest

MASK = (1 << 64) - 1
P = 0x100000001B3
TOKEN_MULT = 0x9E3779B97F4A7C15
WORD = re.compile(r"[^\W_]+")  # runs of str.isalnum() characters: Unicode letters and numbers


def mix(x: int) -> int:
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & MASK
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


def horner(values: list[int], plus_one: bool) -> int:
    h = 0
    for v in values:
        h = (h * P + v + plus_one) & MASK
    return mix((h + len(values) * TOKEN_MULT) & MASK)


def py_shingles(text: str | None, unit: str, ngram: int) -> set[int]:
    t = unicodedata.normalize("NFKC", text or "").lower()
    pieces = WORD.findall(t) if unit == "word" else list(t)
    units = [horner(list(p.encode("utf-8")), True) for p in pieces]
    if not units:
        return set()
    w = min(len(units), ngram)
    return {horner(units[j : j + w], False) for j in range(len(units) - w + 1)}


def py_minhash(s: set[int], a: np.ndarray, b: np.ndarray) -> list[int]:
    if not s:
        return [0xFFFFFFFF] * a.size
    return [
        min(((ai * x + bi) & MASK) >> 32 for x in s)
        for ai, bi in zip(a.tolist(), b.tolist(), strict=True)
    ]


def unicode_docs(n: int, seed: int = 0) -> list[str | None]:
    rng = np.random.default_rng(seed)
    words = [
        "café", "naïve", "résumé", "Straße", "ﬁne", "①②", "日本語", "テキスト", "Ελλάδα", "москва",
        "ÅNGSTRÖM", "x²", "abc", "data", "tamis", "42", "émoji🙂", "co-op", "l'été", "ǅemal",
    ]  # fmt: skip
    seps = [" ", ", ", "  ", " - ", "\n", "…", ". "]
    docs: list[str | None] = []
    for i in range(n):
        k = int(rng.integers(0, 30))
        parts = [
            words[int(j)] + seps[int(s)]
            for j, s in zip(rng.integers(0, 20, k), rng.integers(0, 7, k), strict=True)
        ]
        docs.append(None if i % 37 == 5 else "".join(parts))
    return docs


def corpus(sms: pl.DataFrame) -> list[str | None]:
    return sms["SMS"].head(300).to_list() + unicode_docs(200) + ["", "a", "A b", "ab ab ab"]


def sets_of(sh: object) -> list[set[int]]:
    off, h = sh.offsets, sh.hashes  # type: ignore[attr-defined]
    return [set(h[off[i] : off[i + 1]].tolist()) for i in range(off.size - 1)]


@pytest.mark.parametrize(("unit", "ngram"), [("word", 5), ("word", 1), ("char", 3)])
def test_shingles_equal_python(sms: pl.DataFrame, unit: str, ngram: int) -> None:
    from tamis.curate.dedup.shingles import shingle

    docs = corpus(sms)
    sh = shingle(pl.Series(docs, dtype=pl.String), unit=unit, ngram=ngram)  # type: ignore[arg-type]
    expected = [py_shingles(d, unit, ngram) for d in docs]
    for i, (off, nxt) in enumerate(zip(sh.offsets[:-1], sh.offsets[1:], strict=True)):
        got = sh.hashes[off:nxt]
        assert (np.diff(got.astype(object)) > 0).all()  # sorted, unique
        assert set(got.tolist()) == expected[i], (i, docs[i])
    # in text order with repeats: the same hashes, counted by n-gram position
    raw = shingle(pl.Series(docs, dtype=pl.String), unit=unit, ngram=ngram, as_sets=False)  # type: ignore[arg-type]
    assert [set(s) for s in sets_of(raw)] == expected
    n_units = [len(WORD.findall(unicodedata.normalize("NFKC", d or "").lower())) for d in docs]
    if unit == "word":
        assert sh.n_tokens.tolist() == n_units
        sizes = np.diff(raw.offsets)
        assert sizes.tolist() == [max(n - ngram + 1, 1) if n else 0 for n in n_units]


def test_minhash_and_jaccard_equal_python(sms: pl.DataFrame) -> None:
    from tamis.curate.dedup.minhash import _perm_params, exact_jaccard, minhash_signatures
    from tamis.curate.dedup.shingles import shingle

    docs = corpus(sms)[::2]
    sh = shingle(pl.Series(docs, dtype=pl.String), ngram=3)
    sets = [py_shingles(d, "word", 3) for d in docs]
    a, b = _perm_params(32, 7)
    sig = minhash_signatures(sh, 32, seed=7, chunk=100, threads=2)
    assert sig.dtype == np.uint32
    assert sig.tolist() == [py_minhash(s, a, b) for s in sets]
    left, right = np.triu_indices(len(docs), 1)
    jac = exact_jaccard(sh, left, right, threads=3)
    expected = [
        len(sets[i] & sets[j]) / len(sets[i] | sets[j]) if sets[i] | sets[j] else 0.0
        for i, j in zip(left.tolist(), right.tolist(), strict=True)
    ]
    assert jac.tolist() == expected  # the same division: bit-identical floats
    assert (exact_jaccard(sh, left, right, threads=1) == jac).all()


def test_kernels_do_not_depend_on_threads(sms: pl.DataFrame) -> None:
    from tamis.curate.dedup.minhash import minhash_signatures
    from tamis.curate.dedup.shingles import shingle

    texts = pl.concat([sms["SMS"], pl.Series(unicode_docs(500, seed=3), dtype=pl.String)])
    one = shingle(texts, ngram=2, threads=1)
    three = shingle(texts, ngram=2, threads=3)
    assert (one.offsets == three.offsets).all() and (one.hashes == three.hashes).all()
    sig1 = minhash_signatures(one, 16, chunk=64, threads=1)
    assert (sig1 == minhash_signatures(one, 16, chunk=1 << 20, threads=3)).all()


_PROBE = """
import sys, polars as pl
from tamis.curate.dedup.shingles import shingle
from tamis.curate.dedup.minhash import minhash_signatures
sh = shingle(pl.Series(["a b c d e f", "héllo wörld, x y z", None]), ngram=3)
print(int(minhash_signatures(sh, 16).astype("uint64").sum()), "numba" in sys.modules)
"""


def test_kernels_run_with_a_fresh_cache_dir_and_numba_loads_only_when_used(tmp_path: Path) -> None:
    from tamis.curate.dedup.minhash import minhash_signatures
    from tamis.curate.dedup.shingles import shingle

    sh = shingle(pl.Series(["a b c d e f", "héllo wörld, x y z", None]), ngram=3)
    expected = int(minhash_signatures(sh, 16).astype(np.uint64).sum())
    for cache in (tmp_path / "fresh", Path("/proc/no-such-dir")):  # new, and not creatable
        env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
        done = subprocess.run(
            [sys.executable, "-c", _PROBE], env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert done.stdout.split() == [str(expected), "True"]
    assert any((tmp_path / "fresh").rglob("*.nbi"))  # the compiled kernels were cached there
    plain = subprocess.run(
        [sys.executable, "-c", "import sys, tamis.curate.dedup, tamis.cli.app; "
         "print('numba' in sys.modules)"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert plain.stdout.strip() == "False", plain.stderr[-2000:]


def test_fingerprints_band_keys_and_splitmix_equal_python(sms: pl.DataFrame) -> None:
    from tamis.curate.dedup.hashing import splitmix64
    from tamis.curate.dedup.minhash import _perm_params, band_key, set_fingerprints
    from tamis.curate.dedup.shingles import shingle

    docs = corpus(sms)[::3]
    sh = shingle(pl.Series(docs, dtype=pl.String), ngram=2)
    sets = [py_shingles(d, "word", 2) for d in docs]
    fps = set_fingerprints(sh, offset=10)
    nonempty = [i for i, s in enumerate(sets) if s]
    assert fps["d"].to_list() == [i + 10 for i in nonempty]
    remixed = [[mix(x ^ 0x5BD1E995) for x in sets[i]] for i in nonempty]
    assert fps["s"].to_list() == [sum(r) & MASK for r in remixed]
    assert fps["m"].to_list() == [min(r) for r in remixed]
    assert fps["n"].to_list() == [len(sets[i]) for i in nonempty]
    sig = np.random.default_rng(0).integers(0, 2**32, (50, 12), dtype=np.uint64).astype(np.uint32)
    mult = _perm_params(4, 0x5EED)[0].tolist()
    for band in range(3):
        want = [
            mix(
                sum(int(v) * m for v, m in zip(row[band * 4 : band * 4 + 4], mult, strict=True))
                & MASK
            )
            for row in sig.tolist()
        ]
        assert band_key(sig, band, 4).tolist() == want
    x = np.array([0, 1, 2**63, MASK, 12345], dtype=np.uint64)
    assert splitmix64(x).tolist() == [mix(v) for v in x.tolist()]
    assert splitmix64(x.reshape(1, 5)).shape == (1, 5)
