"""near_dedup: the SMS recall/precision bar against brute-force Jaccard, determinism, tabular mode."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from tamis.curate.dedup import (
    NearDedupConfig,
    expand_pairs,
    near_dedup_tabular,
    near_dedup_text,
    text_pairs,
)
from tamis.curate.dedup.minhash import lsh_params
from tamis.errors import DataError


def _brute_force_pairs(texts: list[str | None], n: int, threshold: float) -> set[tuple[int, int]]:
    """Independent ground truth: Python word n-gram sets, exact Jaccard of every pair that shares
    any shingle (a sparse product; pairs sharing none have Jaccard 0)."""
    sets = []
    for text in texts:
        toks = re.findall(r"[^\W_]+", unicodedata.normalize("NFKC", text or "").lower())
        if len(toks) >= n:
            sets.append({" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)})
        else:
            sets.append({" ".join(toks)} if toks else set())
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for g in s:
            rows.append(i)
            cols.append(vocab.setdefault(g, len(vocab)))
    x = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (x @ x.T).tocoo()
    size = np.array([len(s) for s in sets])
    upper = inter.row < inter.col
    r, c, v = inter.row[upper], inter.col[upper], inter.data[upper]
    jac = v / (size[r] + size[c] - v)
    keep = jac >= threshold
    return set(zip(r[keep].tolist(), c[keep].tolist(), strict=True))


def test_sms_recall_and_precision_against_brute_force(sms: pl.DataFrame) -> None:
    truth = _brute_force_pairs(sms["SMS"].to_list(), n=5, threshold=0.8)
    tp = text_pairs(sms["SMS"], ngram=5, num_perm=128, threshold=0.8, seed=0)
    found = {(int(a), int(b)) for a, b in expand_pairs(tp)}
    hits = len(truth & found)
    recall, precision = hits / len(truth), hits / len(found)
    assert len(truth) > 1000  # the bar is meaningful: many near-duplicate pairs
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)
    # the step-level function agrees and reports the histogram of checked pairs
    out, report, clusters, pairs = near_dedup_text(
        sms, NearDedupConfig(column="SMS", threshold=0.8), seed=0
    )
    assert report["verified_pairs"] + report["identical_shingle_sets"] == pairs.height
    assert sum(b["count"] for b in report["jaccard_histogram"]) == report["candidate_pairs"]
    assert report["rows_out"] == out.height == sms.height - report["duplicates"]
    assert report["duplicates"] >= 403  # at least the exact duplicates the dataset card names
    assert clusters["size"].sum() == report["rows_in_clusters"]


def test_deterministic_with_seed_and_flag(sms: pl.DataFrame) -> None:
    small = sms.head(1500)
    a = near_dedup_text(small, NearDedupConfig(column="SMS", action="flag"), seed=3)
    b = near_dedup_text(small, NearDedupConfig(column="SMS", action="flag"), seed=3)
    assert a.frame.equals(b.frame) and a.pairs.equals(b.pairs)
    flagged = a.frame
    assert flagged.height == small.height
    assert flagged["is_near_duplicate_issue"].sum() == a.report["flagged"] > 0
    score = flagged["near_duplicate_score"]
    assert score.min() >= 0 and score.max() <= 1  # type: ignore[operator]
    in_cluster = flagged["near_duplicate_cluster"].is_not_null()
    assert (score.filter(in_cluster) <= 0.2 + 1e-9).all()
    assert (score.filter(~in_cluster) == 1).all()


def test_lsh_params_favour_recall() -> None:
    bands, rows = lsh_params(0.8, 128)
    assert bands * rows <= 128
    assert 1 - (1 - 0.8**rows) ** bands >= 0.995


def test_char_shingles_and_edits() -> None:
    base = "the quick brown fox jumps over the lazy dog near the river bank today"
    df = pl.DataFrame(
        {"t": [base, base.replace("lazy", "lazzy"), "completely different text here", None]}
    )
    out, report, _, pairs = near_dedup_text(
        df, NearDedupConfig(column="t", unit="char", ngram=4, threshold=0.7)
    )
    assert pairs.select("left", "right").rows() == [(0, 1)]
    assert out["t"].to_list() == [base, "completely different text here", None]
    assert report["documents_without_shingles"] == 1


def test_tabular_blocking_with_tolerance() -> None:
    df = pl.DataFrame(
        {
            "city": ["Paris", " paris", "Lyon", "Paris", "Paris"],
            "price": [100.0, 100.4, 100.0, 101.0, 99.7],
            "rooms": [3, 3, 3, 3, 3],
        }
    )
    out, report, clusters, pairs = near_dedup_tabular(
        df,
        NearDedupConfig(
            categorical=["city"], numeric=["price", "rooms"], tolerance={"price": 0.5, "rooms": 0}
        ),
    )
    assert sorted(pairs.select("left", "right").rows()) == [(0, 1), (0, 4)]
    assert out.height == 3 and report["clusters"] == 1
    # brute force over all pairs agrees
    rows = df.with_columns(pl.col("city").str.strip_chars().str.to_lowercase()).rows()
    brute = [
        (i, j)
        for i in range(len(rows))
        for j in range(i + 1, len(rows))
        if rows[i][0] == rows[j][0]
        and abs(rows[i][1] - rows[j][1]) <= 0.5
        and rows[i][2] == rows[j][2]
    ]
    assert brute == sorted(pairs.select("left", "right").rows())


def test_bad_text_input() -> None:
    df = pl.DataFrame({"n": [1, 2], "t": [None, None]}, schema={"n": pl.Int64, "t": pl.String})
    with pytest.raises(DataError, match="column 'n'.*not a string"):
        near_dedup_text(df, NearDedupConfig(column="n"))
    with pytest.raises(DataError, match="column 't'.*entirely null"):
        near_dedup_text(df, NearDedupConfig(column="t"))
    with pytest.raises(DataError, match="column 'x'"):
        near_dedup_text(df, NearDedupConfig(column="x"))
    with pytest.raises(DataError, match="no rows"):
        near_dedup_text(df.head(0), NearDedupConfig(column="t"))
    with pytest.raises(DataError, match="column 't'"):
        near_dedup_tabular(df, NearDedupConfig(categorical=[], numeric=["t"]))


def test_ascii_fast_path_hashes_like_the_regex_path() -> None:
    from tamis.curate.dedup.shingles import shingle

    texts = pl.Series(["Ab cd, EF  9x", "ab cd ef 9x é", "", None, "x"])
    sh = shingle(texts, ngram=1)
    sets = [set(sh.hashes[sh.offsets[i] : sh.offsets[i + 1]].tolist()) for i in range(5)]
    assert (
        len(sets[0]) == 4 and sets[0] < sets[1] and len(sets[1]) == 5
    )  # row 1 takes the regex path
    assert sets[2] == sets[3] == set() and sh.n_tokens.tolist() == [4, 5, 0, 0, 1]
    sliced = shingle(texts.slice(1, 4), ngram=1)  # buffers of a sliced array start mid-way
    assert sliced.hashes[sliced.offsets[0] : sliced.offsets[1]].tolist() == sorted(sets[1])


def test_span_hashes_match_python_and_depend_on_bytes_only() -> None:
    from tamis.curate.dedup.hashing import tiled_span_hashes

    rng = np.random.default_rng(0)
    data = rng.integers(97, 123, 5000).astype(np.uint8)
    starts = np.array([0, 3, 10, 200, 201, 3000], dtype=np.int64)
    got = tiled_span_hashes(data, starts)
    mask = (1 << 64) - 1
    ends = [*starts[1:].tolist(), data.size]
    for h, lo, hi in zip(got.tolist(), starts.tolist(), ends, strict=True):
        x = 0
        for byte in data[lo:hi].tolist():  # Horner over byte + 1, then length * TOKEN_MULT
            x = (x * 0x100000001B3 + byte + 1) & mask
        x = (x + (hi - lo) * 0x9E3779B97F4A7C15) & mask
        assert h == int(splitmix(np.array([x], dtype=np.uint64))[0])
    assert np.unique(got).size == starts.size
    # a span's hash depends on its bytes only, not on where it sits
    again = tiled_span_hashes(data[3:10].copy(), np.array([0]))
    assert again[0] == got[1]


@pytest.mark.parametrize("collide", [False, True])
def test_exact_jaccard_matches_python_sets(collide: bool) -> None:
    from tamis.curate.dedup.minhash import exact_jaccard
    from tamis.curate.dedup.shingles import Shingles

    rng = np.random.default_rng(1)
    sets = [
        np.unique(rng.integers(0, 60, rng.integers(0, 30)).astype(np.uint64)) for _ in range(80)
    ]
    # spread the small ids over the top bits too, and make two hashes share their top bits
    sets = [np.sort(splitmix(s)) for s in sets]
    if collide:  # same top bits within one document: the dense-id path
        sets[0] = np.array([1, 2, 3], dtype=np.uint64)
    sh = Shingles(
        offsets=np.concatenate([[0], np.cumsum([s.size for s in sets])]).astype(np.int64),
        hashes=np.concatenate(sets),
        n_tokens=np.array([s.size for s in sets]),
    )
    left, right = np.triu_indices(len(sets), 1)
    got = exact_jaccard(sh, left, right)
    for a, b, j in zip(left, right, got, strict=True):
        sa, sb = set(sets[a].tolist()), set(sets[b].tolist())
        expected = len(sa & sb) / len(sa | sb) if sa | sb else 0.0
        assert abs(j - expected) < 1e-12


def splitmix(x: np.ndarray) -> np.ndarray:
    from tamis.curate.dedup.hashing import splitmix64

    return splitmix64(x)


def test_signatures_do_not_depend_on_threads(sms: pl.DataFrame) -> None:
    from tamis.curate.dedup.minhash import minhash_signatures
    from tamis.curate.dedup.shingles import shingle

    sh = shingle(sms["SMS"].head(2000), ngram=3)
    one = minhash_signatures(sh, 64, seed=5, chunk=512, threads=1)
    two = minhash_signatures(sh, 64, seed=5, chunk=512, threads=3)
    assert (one == two).all() and (one != minhash_signatures(sh, 64, seed=6, chunk=512)).any()


def test_identical_sets_from_given_fingerprints() -> None:
    from tamis.curate.dedup.minhash import identical_sets, set_fingerprints
    from tamis.curate.dedup.shingles import shingle

    texts = pl.Series(["a b c", "x", "a b c", None, "c b a", "x", "a b c d"])
    sh = shingle(texts, ngram=2)
    assert identical_sets(sh).tolist() == [0, 1, 0, -1, 4, 1, 6]
    given = identical_sets(sh, set_fingerprints(sh, offset=7), offset=7)
    assert given.tolist() == identical_sets(sh).tolist()
