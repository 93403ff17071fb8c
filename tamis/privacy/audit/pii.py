"""PII scan: which columns hold e-mails, phone numbers, national ids, card numbers or names.

Vectorised over string columns with Polars regexes (a sample of `max_rows` rows per column).
Card numbers must pass the Luhn check, so order numbers and long ids are not flagged. Names are
detected where that is possible without a model: a column named like a name field, or a column
whose values are mostly two or three capitalised words ("Ada Lovelace").
A column is flagged when at least `min_share` of its non-null sampled values match.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import polars as pl

from tamis.privacy.audit.order import subsample

PATTERNS: dict[str, str] = {
    "email": r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}\b",
    "phone": r"(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{2,4}\)[\s.\-]?)?\d{2,4}[\s.\-]\d{2,4}[\s.\-]\d{2,6}\b",
    "us_ssn": r"\b\d{3}-\d{2}-\d{4}\b",
    "uk_nino": r"(?i)\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b",
    "fr_insee": r"\b[12]\s?\d{2}\s?(?:0[1-9]|1[0-2])\s?\d{2}\s?\d{3}\s?\d{3}\s?\d{2}\b",
    "iban": r"\b[A-Z]{2}\d{2}(?:\s?[A-Z0-9]{4}){3,7}(?:\s?[A-Z0-9]{1,3})?\b",
}
CARD = r"\b(?:\d[ \-]?){12,18}\d\b"
NAME_VALUE = r"^[A-Z][a-z'\-]+(?: [A-Z][a-z'\-]+){1,2}$"
NAME_COLUMN = re.compile(r"(?i)^(full_?name|first_?name|last_?name|surname|given_?name|name)$")


def luhn_ok(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_vec(values: list[str]) -> np.ndarray:
    return np.array([luhn_ok(v) for v in values], dtype=bool)


def scan_pii(
    frame: pl.DataFrame, max_rows: int = 10000, min_share: float = 0.1, seed: int = 0
) -> dict[str, Any]:
    """Columns that look like PII: {"findings": [{column, kind, share, n}], "columns_flagged"}."""
    f = subsample(frame, max_rows, seed)
    findings: list[dict[str, Any]] = []
    for col, dtype in f.schema.items():
        if dtype not in (pl.Utf8, pl.Categorical) and not isinstance(dtype, pl.Enum):
            if dtype.is_integer() and NAME_COLUMN.match(col) is None:
                # integer columns can hold card numbers
                s = f[col].drop_nulls().cast(pl.Utf8)
            else:
                continue
        else:
            s = f[col].cast(pl.Utf8).drop_nulls()
        n = s.len()
        if n == 0:
            continue
        shares: dict[str, float] = {}
        if not dtype.is_integer():
            for kind, pat in PATTERNS.items():
                shares[kind] = float(s.str.contains(pat).sum() / n)
        cards = s.str.extract(f"({CARD})", 1).drop_nulls()
        if cards.len():
            shares["credit_card"] = float(luhn_vec(cards.to_list()).sum() / n)
        if not dtype.is_integer():
            named = NAME_COLUMN.match(col) is not None
            name_share = float(s.str.strip_chars().str.contains(NAME_VALUE).sum() / n)
            if named or name_share >= 0.5:
                shares["name"] = max(name_share, 1.0 if named else 0.0)
        if shares.get("credit_card", 0) >= min_share:
            shares.pop("phone", None)  # card numbers also look like phone numbers
        for kind, share in shares.items():
            if share >= min_share:
                findings.append({"column": col, "kind": kind, "share": round(share, 4), "n": n})
    flagged = sorted({x["column"] for x in findings})
    return {"findings": findings, "columns_flagged": flagged, "n_flagged": len(flagged)}
