"""Tokenising and shingling text into per-document sets of 64-bit shingle hashes.

Everything here is vectorised: Polars expressions for normalisation and tokenising, NumPy over the
Arrow buffers for hashing (`hashing.py`). Shingles are identified by 64-bit hashes; the hash is
our own (polynomial over UTF-8 bytes, then a splitmix64 finaliser), so it does not change with the
Polars version and is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from tamis.curate.dedup.hashing import TOKEN_MULT as _TOKEN_MULT
from tamis.curate.dedup.hashing import P as _P
from tamis.curate.dedup.hashing import splitmix64, tiled_span_hashes
from tamis.curate.dedup.hashing import string_buffers as _string_buffers

#: what a token is: a run of Unicode letters or digits (the same class in Rust regex and RE2)
TOKEN_PATTERN = r"[\p{L}\p{N}]+"
Unit = Literal["word", "char"]


_ALNUM = np.zeros(256, dtype=bool)
for _lo, _hi in ((48, 58), (65, 91), (97, 123)):
    _ALNUM[_lo:_hi] = True


def _ascii_word_units(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes and tokens per document for ASCII-only strings, tokenised in NumPy.

    For ASCII, runs of [A-Za-z0-9] are exactly the runs of TOKEN_PATTERN, and the hashes equal
    those of the regex path (same bytes, same hash).
    """
    data, offs = _string_buffers(text)
    n_docs = offs.shape[0] - 1
    is_tok = _ALNUM[data]
    doc_start = np.zeros(data.shape[0] + 1, dtype=bool)
    doc_start[offs] = True
    prev = np.zeros(data.shape[0], dtype=bool)
    prev[1:] = is_tok[:-1]
    first = is_tok & (~prev | doc_start[:-1])
    tb = np.nonzero(is_tok)[0]
    start_pos = np.nonzero(first)[0]
    starts_c = np.nonzero(first[tb])[0]
    hashes = tiled_span_hashes(data[tb], starts_c)
    doc_of = np.searchsorted(offs, start_pos, side="right") - 1
    doc_lens = np.bincount(doc_of, minlength=n_docs).astype(np.int64)
    return hashes, doc_lens


def _word_units(text: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes (in document order) and tokens per document; NumPy for ASCII rows, regex else."""
    n = text.len()
    nonascii = text.str.contains(r"[^\x00-\x7F]").fill_null(False).to_numpy()
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (rows, token hashes, lens)
    ascii_idx = np.nonzero(~nonascii)[0]
    if ascii_idx.size:
        h, lens = _ascii_word_units(text.gather(ascii_idx))
        parts.append((ascii_idx, h, lens))
    other_idx = np.nonzero(nonascii)[0]
    if other_idx.size:
        tokens = text.gather(other_idx).str.extract_all(TOKEN_PATTERN)
        lens = tokens.list.len().fill_null(0).to_numpy().astype(np.int64)
        flat = tokens.explode().drop_nulls()
        if flat.len():
            data, offs = _string_buffers(flat)
            h = tiled_span_hashes(data, offs[:-1])
        else:
            h = np.zeros(0, np.uint64)
        parts.append((other_idx, h, lens))
    doc_lens = np.zeros(n, dtype=np.int64)
    if not parts:
        return np.zeros(0, np.uint64), doc_lens
    for src, _, lens in parts:
        doc_lens[src] = lens
    docs = np.concatenate([np.repeat(src, lens) for src, _, lens in parts])
    hashes = np.concatenate([h for _, h, _ in parts])
    order = np.argsort(docs, kind="stable")
    return hashes[order], doc_lens


def normalize_text(values: pl.Series, *, lowercase: bool = True, nfkc: bool = True) -> pl.Series:
    """NFKC + lower-casing of a string Series (nulls become empty strings)."""
    text = values.cast(pl.String).fill_null("")
    if nfkc:  # NFKC is the identity on ASCII: normalise only the other rows
        nonascii = text.str.contains(r"[^\x00-\x7F]").fill_null(False)
        if nonascii.any():
            idx = nonascii.arg_true()
            text = text.scatter(idx, text.gather(idx).str.normalize("NFKC"))
    if lowercase:
        text = text.str.to_lowercase()
    return text


@dataclass
class Shingles:
    """Per-document sets of shingle hashes in CSR form: doc d owns hashes[offsets[d]:offsets[d+1]].

    Hashes inside each document are sorted and unique (a set). `n_tokens` is the number of tokens
    (words or characters) of each document; a document with fewer than `ngram` tokens has one
    shingle made of all its tokens, and a document with none has no shingle at all.
    """

    offsets: np.ndarray
    hashes: np.ndarray
    n_tokens: np.ndarray

    @property
    def n_docs(self) -> int:
        return int(self.offsets.shape[0] - 1)

    def sizes(self) -> np.ndarray:
        return np.diff(self.offsets)

    def doc_ids(self) -> np.ndarray:
        return np.repeat(np.arange(self.n_docs, dtype=np.int64), self.sizes())


def _ngram_hashes(
    unit_hash: np.ndarray, doc_lens: np.ndarray, ngram: int
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of consecutive unit hashes within each document -> (doc ids, hashes)."""
    n_docs = doc_lens.shape[0]
    starts = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(doc_lens, out=starts[1:])
    total = int(starts[-1])
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int64), doc_lens)
    pos = np.arange(total, dtype=np.int64) - starts[:-1][doc_of] if total else np.zeros(0, np.int64)
    # an n-gram starts at every position with at least `ngram` units left in its document
    len_of = doc_lens[doc_of]
    valid = pos + ngram <= len_of
    # a short document (0 < len < ngram) gets one shingle of all its units, at its first position
    short_first = (len_of < ngram) & (pos == 0)
    keep = valid | short_first
    idx = np.nonzero(keep)[0]
    width = np.minimum(len_of[idx], ngram)
    h = np.zeros(idx.shape[0], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(ngram):
            inside = k < width
            sel = idx[inside] + k
            h[inside] = h[inside] * _P + unit_hash[sel]
        h += width.astype(np.uint64) * _TOKEN_MULT
    return doc_of[idx], splitmix64(h)


def _sorted_sets(
    doc_ids: np.ndarray, hashes: np.ndarray, n_docs: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sort hashes within documents and drop repeats -> (offsets, hashes)."""
    order = np.argsort(hashes, kind="stable")
    order = order[np.argsort(doc_ids[order], kind="stable")]
    d, h = doc_ids[order], hashes[order]
    keep = np.ones(d.size, dtype=bool)
    keep[1:] = (d[1:] != d[:-1]) | (h[1:] != h[:-1])
    d, h = d[keep], h[keep]
    counts = np.bincount(d, minlength=n_docs) if d.size else np.zeros(n_docs, np.int64)
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, h.astype(np.uint64, copy=False)


def _concat_shingles(parts: list[Shingles]) -> Shingles:
    offsets = [np.zeros(1, np.int64)]
    base = 0
    for part in parts:
        offsets.append(part.offsets[1:] + base)
        base += int(part.offsets[-1])
    return Shingles(
        offsets=np.concatenate(offsets),
        hashes=np.concatenate([p.hashes for p in parts]),
        n_tokens=np.concatenate([p.n_tokens for p in parts]),
    )


def shingle(
    values: pl.Series,
    *,
    unit: Unit = "word",
    ngram: int = 5,
    lowercase: bool = True,
    nfkc: bool = True,
    chunk_docs: int = 250_000,
    as_sets: bool = True,
) -> Shingles:
    """Shingle hashes of each string: word n-grams (tokens = runs of letters/digits) or char n-grams.

    With `as_sets=False` each document's hashes stay in text order with repeats (no sort; the
    `Shingles` set invariant does not hold). Nulls and empty strings have no shingles. Vectorised:
    tokenising with a Polars regex, hashing with NumPy over the Arrow buffers (no Python loop over
    documents).
    """
    if ngram < 1:
        raise ValueError("ngram must be >= 1")

    def one(part: pl.Series) -> Shingles:
        text = normalize_text(part, lowercase=lowercase, nfkc=nfkc)
        return _shingle_texts(text, unit, ngram, as_sets)

    if values.len() <= chunk_docs:
        return one(values)
    # bounded memory: whole chunks of documents, one at a time
    starts = range(0, values.len(), chunk_docs)
    return _concat_shingles([one(values.slice(start, chunk_docs)) for start in starts])


def _shingle_texts(text: pl.Series, unit: Unit, ngram: int, as_sets: bool) -> Shingles:
    """`shingle` of normalised texts (no nulls)."""
    n_docs = text.len()
    if unit == "word":
        unit_hash, doc_lens = _word_units(text)
    elif unit == "char":
        data, offs = _string_buffers(text)
        # a character starts at every byte that is not a UTF-8 continuation byte
        lead = np.nonzero((data & 0xC0) != 0x80)[0].astype(np.int64)
        unit_hash = tiled_span_hashes(data, lead)
        doc_lens = (np.searchsorted(lead, offs[1:]) - np.searchsorted(lead, offs[:-1])).astype(
            np.int64
        )
    else:
        raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
    doc_ids, hashes = _ngram_hashes(unit_hash, doc_lens, ngram)
    if not as_sets:  # document order, repeats kept: enough for membership tests, and no sort
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(np.bincount(doc_ids, minlength=n_docs), out=offsets[1:])
        return Shingles(offsets=offsets, hashes=hashes, n_tokens=doc_lens)
    offsets, sets = _sorted_sets(doc_ids, hashes, n_docs)
    return Shingles(offsets=offsets, hashes=sets, n_tokens=doc_lens)
