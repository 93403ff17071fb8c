"""k-anonymity / l-diversity, the PII scan, SDMetrics disclosure metrics and record linkage."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest

from tamis.errors import DataError
from tamis.privacy.audit.disclosure import anonymeter_risks, linkage_risk, sdmetrics_disclosure
from tamis.privacy.audit.kanon import k_anonymity
from tamis.privacy.audit.pii import luhn_ok, scan_pii


def test_k_anonymity_and_l_diversity() -> None:
    df = pl.DataFrame(
        {
            "zip": ["1", "1", "1", "2", "2", "3"],
            "sex": ["f", "f", "f", "m", "m", "f"],
            "disease": ["flu", "flu", "cold", "flu", "flu", "hiv"],
        }
    )
    r = k_anonymity(df, ["zip", "sex"], ["disease"], k_threshold=2)
    assert r["k"] == 1 and r["classes"] == 3
    assert r["rows_in_small_classes"] == 1 and r["l"] == 1
    assert r["l_by_column"] == {"disease": 1}
    r2 = k_anonymity(df.filter(pl.col("zip") != "3"), ["zip", "sex"], ["disease"], k_threshold=2)
    assert r2["k"] == 2 and r2["share_in_small_classes"] == 0.0
    with pytest.raises(DataError, match="not in the data"):
        k_anonymity(df, ["zipcode"])


def test_numeric_quasi_identifiers_are_binned(make_mixed: Any) -> None:
    df = make_mixed(1000)
    raw = k_anonymity(df, ["amount"], bins=0)
    binned = k_anonymity(df, ["amount"], bins=10)
    assert raw["k"] == 1 and binned["k"] >= 90


def test_luhn() -> None:
    assert luhn_ok("4111 1111 1111 1111") and luhn_ok("5500-0000-0000-0004")
    assert not luhn_ok("4111 1111 1111 1112") and not luhn_ok("1234")


def test_pii_scan_flags_the_right_columns() -> None:
    n = 40
    df = pl.DataFrame(
        {
            "contact": [f"user{i}@mail.example.org" for i in range(n)],
            "phone": [f"+44 20 7946 {1000 + i}" for i in range(n)],
            "ssn": [f"{100 + i}-45-6789" for i in range(n)],
            "card": ["4111 1111 1111 1111", "4111 1111 1111 1112"] * (n // 2),
            "order_no": ["1234 5678 9012 3456"] * n,  # 16 digits, fails Luhn
            "customer": ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra"] * 10,
            "city": ["paris", "london"] * (n // 2),
            "amount": list(range(n)),
        }
    )
    r = scan_pii(df)
    kinds = {(f["column"], f["kind"]) for f in r["findings"]}
    assert ("contact", "email") in kinds and ("phone", "phone") in kinds
    assert ("ssn", "us_ssn") in kinds and ("card", "credit_card") in kinds
    assert ("customer", "name") in kinds
    flagged = set(r["columns_flagged"])
    assert "city" not in flagged and "amount" not in flagged
    assert ("order_no", "credit_card") not in kinds
    card = next(f for f in r["findings"] if f["kind"] == "credit_card")
    assert card["share"] == 0.5


def test_adult_synthetic_has_no_pii(adult_te: pl.DataFrame) -> None:
    assert scan_pii(adult_te)["n_flagged"] == 0


def test_disclosure_and_linkage(adult_tr: pl.DataFrame, adult_te: pl.DataFrame) -> None:
    qis, sens = ["age", "sex", "race", "education"], ["income"]
    train = adult_tr.head(3000)
    copy = sdmetrics_disclosure(train, train, qis, sens, max_rows=300)
    indep = sdmetrics_disclosure(train, adult_te.head(3000), qis, sens, max_rows=300)
    assert 0 <= copy["disclosure_protection"] <= 1 and 0 <= indep["categorical_cap"] <= 1
    assert copy["categorical_cap"] <= indep["categorical_cap"] + 0.05
    link_copy = linkage_risk(train, adult_te.head(3000), train, qis, sens)
    link_ind = linkage_risk(train, adult_te.head(3000), adult_tr[3000:6000], qis, sens)
    assert link_copy["excess_risk"] > link_ind["excess_risk"]
    assert abs(link_ind["excess_risk"]) < 0.05


def test_anonymeter_is_optional(make_mixed: Any) -> None:
    df = make_mixed(200)
    r = anonymeter_risks(df, df, df, ["age", "grp"], ["label"])
    pytest.importorskip("anonymeter") if "skipped" not in r else None
    assert "skipped" in r or "singling_out_risk" in r
