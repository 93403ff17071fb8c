"""What a reader needs to compare the versions of a sweep: rows, class balance and null labels
dropped (from the cells) and the chain of steps that made each version (from the lineage)."""

from __future__ import annotations

from typing import Any

from tamis.pipelines.store import Store
from tamis.sweeps.documents import CellResult
from tamis.sweeps.plan import Plan


def test_info(results: list[CellResult]) -> dict[str, Any] | None:
    """Rows and class balance of the fixed test set (as the first cell scored it)."""
    for r in sorted(results, key=lambda r: (int(r["seed"]), r["version"])):
        info = r.get("info") or {}
        if "rows_test" in info:
            counts = info.get("class_counts_test") or {}
            total = sum(counts.values()) or 1
            return {
                "rows": info["rows_test"],
                "class_balance": {k: v / total for k, v in counts.items()},
                "positive": info.get("positive"),
                "null_labels_dropped": (info.get("null_labels_dropped") or {}).get("test", 0),
            }
    return None


def _chain(store: Store, version_id: str) -> list[str]:
    """The steps that made a version, source first, along its primary inputs (from lineage)."""
    try:
        lin = store.lineage(version_id)
    except Exception:  # a version outside the catalog (e.g. a store being repaired)
        return []
    nodes = {n["id"]: n for n in lin["nodes"]}
    parents: dict[str, list[dict[str, Any]]] = {}
    for e in lin["edges"]:
        parents.setdefault(e["child"], []).append(e)
    chain: list[str] = []
    node: str | None = version_id
    seen: set[str] = set()
    while node is not None and node not in seen:
        seen.add(node)
        info = nodes.get(node, {})
        kind = str(info.get("step_type") or "")
        name = str(info.get("name") or node[:12]).rsplit("/", 1)[-1]
        chain.append(f"{name} (source)" if kind in ("", "source") else kind)
        ups = sorted(parents.get(node, []), key=lambda e: (e["role"] != "input", e["parent"]))
        node = ups[0]["parent"] if ups else None
    return chain[::-1]


def version_info(
    store: Store, plan: Plan, version: str, results: list[CellResult]
) -> dict[str, Any]:
    """What a reader needs to compare a version: rows, class balance, null labels dropped (from
    its cells) and the chain of steps that made it (from the store's lineage)."""
    ids = plan.data_ids.get(version, {})
    first = ids[min(ids)] if ids else None
    info: dict[str, Any] = {"steps": _chain(store, first) if first else []}
    mine = sorted((r for r in results if r["version"] == version), key=lambda r: int(r["seed"]))
    rows = [r["info"]["rows_train"] for r in mine if "rows_train" in (r.get("info") or {})]
    if rows:
        info["rows"] = {"min": min(rows), "max": max(rows), "mean": sum(rows) / len(rows)}
    counts: dict[str, int] = {}
    positive = None
    nulls = {"train": 0, "test": 0}
    for r in mine:
        ri = r.get("info") or {}
        for label, n in (ri.get("class_counts_train") or {}).items():
            counts[label] = counts.get(label, 0) + int(n)
        positive = ri.get("positive", positive)
        for side in nulls:
            nulls[side] += int((ri.get("null_labels_dropped") or {}).get(side, 0))
    if counts:
        total = sum(counts.values())
        info["class_balance"] = {k: v / total for k, v in sorted(counts.items())}
        info["positive"] = positive
    if mine and any(r.get("info", {}).get("null_labels_dropped") for r in mine):
        info["null_labels_dropped"] = nulls
    return info


def warnings_of(versions: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for v, info in versions.items():
        nulls = info.get("null_labels_dropped") or {}
        if nulls.get("train") or nulls.get("test"):
            out.append(
                f"version '{v}': rows with a null label were dropped (train {nulls['train']}, "
                f"test {nulls['test']}, summed over seeds)"
            )
    return out
