"""Tokenising and shingling text into per-document sets of 64-bit shingle hashes.

Polars expressions normalise the text (and tokenise non-ASCII documents); numba kernels over the
Arrow buffers tokenise, hash and build the sets (`kernels.py`, `hashing.py`). Shingles are
identified by 64-bit hashes; the hash is our own (polynomial over UTF-8 bytes, then a splitmix64
finaliser), so it does not change with the Polars version and is the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from tamis.curate.dedup.hashing import string_buffers as _string_buffers
from tamis.curate.dedup.hashing import tiled_span_hashes

#: what a token is: a run of Unicode letters or digits (the same class in Rust regex and RE2)
TOKEN_PATTERN = r"[\p{L}\p{N}]+"
Unit = Literal["word", "char"]


def _word_units(
    text: pl.Series, lowercase: bool, nfkc: bool, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Token hashes (in document order) and tokens per document of texts (no nulls).

    ASCII documents are tokenised, lower-cased and hashed in numba kernels (for ASCII, NFKC is the
    identity, lower-casing maps A-Z to a-z, and runs of [A-Za-z0-9] are exactly the runs of
    TOKEN_PATTERN); the others are normalised and tokenised with Polars, their tokens hashed by
    `tiled_span_hashes` (the same hash of the same bytes).
    """
    from tamis.curate.dedup import kernels

    data, offs = _string_buffers(text)
    data = np.ascontiguousarray(data)
    n = offs.shape[0] - 1
    spans = kernels.ranges(offs, 4 * kernels.default_threads() if data.size > 1 << 20 else 1)
    doc_lens = np.zeros(n, dtype=np.int64)
    nonascii = np.zeros(n, dtype=np.bool_)
    kernels.run_ranges(kernels.ascii_word_counts, (data, offs, doc_lens, nonascii), spans, threads)
    other_idx = np.nonzero(nonascii)[0]
    other_hashes = np.zeros(0, np.uint64)
    if other_idx.size:
        other = normalize_text(text.gather(other_idx), lowercase=lowercase, nfkc=nfkc)
        tokens = other.str.extract_all(TOKEN_PATTERN)
        doc_lens[other_idx] = tokens.list.len().fill_null(0).to_numpy()
        flat = tokens.explode().drop_nulls()
        if flat.len():
            tok_data, tok_offs = _string_buffers(flat)
            other_hashes = tiled_span_hashes(tok_data, tok_offs[:-1], threads)
    token_offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(doc_lens, out=token_offs[1:])
    hashes = np.empty(int(token_offs[-1]), dtype=np.uint64)
    args = (data, offs, nonascii, lowercase, token_offs, hashes)
    kernels.run_ranges(kernels.ascii_word_hashes, args, spans, threads)
    if other_hashes.size:
        lens = doc_lens[other_idx]
        within = np.arange(other_hashes.size) - np.repeat(np.cumsum(lens) - lens, lens)
        hashes[np.repeat(token_offs[other_idx], lens) + within] = other_hashes
    return hashes, doc_lens


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


def _ngram_sets(
    unit_hash: np.ndarray, doc_lens: np.ndarray, ngram: int, as_sets: bool, threads: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the n-grams of consecutive unit hashes within each document -> (offsets, hashes).

    h = splitmix64(Horner sum of the unit hashes with multiplier P, plus width * TOKEN_MULT), in a
    numba kernel (`kernels.ngram_sets`); with `as_sets` each document's hashes sorted and unique.
    """
    from tamis.curate.dedup import kernels

    n_docs = doc_lens.shape[0]
    unit_offs = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(doc_lens, out=unit_offs[1:])
    counts = np.where(doc_lens >= ngram, doc_lens - ngram + 1, (doc_lens > 0).astype(np.int64))
    offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint64)
    sizes = np.empty(n_docs, dtype=np.int64)
    many = unit_offs[-1] > 1 << 17
    spans = kernels.ranges(unit_offs, 4 * kernels.default_threads() if many else 1)
    args = (np.ascontiguousarray(unit_hash), unit_offs, ngram, as_sets, offsets, out, sizes)
    kernels.run_ranges(kernels.ngram_sets, args, spans, threads)
    if not as_sets:
        return offsets, out
    set_offsets = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(sizes, out=set_offsets[1:])
    kernels.compact(out, offsets, sizes, set_offsets)
    total = int(set_offsets[-1])
    return set_offsets, out[:total] if total == out.size else out[:total].copy()


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
    threads: int | None = None,
) -> Shingles:
    """Shingle hashes of each string: word n-grams (tokens = runs of letters/digits) or char n-grams.

    With `as_sets=False` each document's hashes stay in text order with repeats (no sort; the
    `Shingles` set invariant does not hold). Nulls and empty strings have no shingles. Tokenising,
    hashing and the per-document sets run in numba kernels over the Arrow buffers (`kernels.py`),
    on `threads` threads (default: the CPUs; the result does not depend on it); non-ASCII
    documents are tokenised with a Polars regex.
    """
    if ngram < 1:
        raise ValueError("ngram must be >= 1")

    def one(part: pl.Series) -> Shingles:
        if unit == "word":  # normalised inside (only the non-ASCII documents by Polars)
            text = part.cast(pl.String).fill_null("")
            unit_hash, doc_lens = _word_units(text, lowercase, nfkc, threads)
        elif unit == "char":
            text = normalize_text(part, lowercase=lowercase, nfkc=nfkc)
            unit_hash, doc_lens = _char_units(text, threads)
        else:
            raise ValueError(f"unit must be 'word' or 'char', got {unit!r}")
        # as_sets=False: document order, repeats kept (enough for membership tests, and no sort)
        offsets, hashes = _ngram_sets(unit_hash, doc_lens, ngram, as_sets, threads)
        return Shingles(offsets=offsets, hashes=hashes, n_tokens=doc_lens)

    if values.len() <= chunk_docs:
        return one(values)
    # bounded memory: whole chunks of documents, one at a time
    starts = range(0, values.len(), chunk_docs)
    return _concat_shingles([one(values.slice(start, chunk_docs)) for start in starts])


def _char_units(text: pl.Series, threads: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Character hashes (in document order) and characters per document of normalised texts."""
    data, offs = _string_buffers(text)
    # a character starts at every byte that is not a UTF-8 continuation byte
    lead = np.nonzero((data & 0xC0) != 0x80)[0].astype(np.int64)
    unit_hash = tiled_span_hashes(data, lead, threads)
    doc_lens = np.searchsorted(lead, offs[1:]) - np.searchsorted(lead, offs[:-1])
    return unit_hash, doc_lens.astype(np.int64)
