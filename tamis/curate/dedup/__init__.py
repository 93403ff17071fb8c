"""Duplicate detection: exact (normalised keys) and near (MinHash/LSH for text, blocking for tables).

    from tamis.curate.dedup import exact_dedup, near_dedup_text, near_dedup_tabular

Modules, by what they hold:
- `keys`: the normalised comparison key of a row and the column checks;
- `hashing`: version-stable 64-bit hashing of byte spans over Arrow string buffers;
- `shingles`: tokenising text into per-document sets of shingle hashes;
- `minhash`: MinHash signatures, LSH banding, exact-Jaccard verification;
- `clusters`: clusters of duplicate rows (numbering, kept rows, components of pair edges, report);
- `exact`: exact dedup; `near`: text near dedup; `tabular`: tabular near dedup;
- `html`: the HTML pages of the dedup, near_dedup and leakage steps.
"""

from tamis.curate.dedup.clusters import Action, Keep, NearDedupResult
from tamis.curate.dedup.exact import DedupConfig, DedupResult, exact_dedup
from tamis.curate.dedup.near import (
    NearDedupConfig,
    TextPairs,
    expand_pairs,
    near_dedup_text,
    text_pairs,
)
from tamis.curate.dedup.tabular import near_dedup_tabular, tabular_pairs

__all__ = [
    "Action",
    "DedupConfig",
    "DedupResult",
    "Keep",
    "NearDedupConfig",
    "NearDedupResult",
    "TextPairs",
    "exact_dedup",
    "expand_pairs",
    "near_dedup_tabular",
    "near_dedup_text",
    "tabular_pairs",
    "text_pairs",
]
