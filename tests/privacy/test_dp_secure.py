"""DP that a reader of the store cannot undo (issue 12, section 1).

Two builds of the same `dp_ctgan` step with the same seed into two fresh stores: the manifest says
`deterministic: false`, the released noisy statistics and rows differ, nothing stored regenerates
the noise, and every field that leaves the step is something the ledger pays for (or public).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from tamis.pipelines.runner import build  # noqa: E402
from tamis.pipelines.store import Store  # noqa: E402
from tamis.privacy.dp.config import DPCTGANConfig  # noqa: E402
from tamis.privacy.dp.transform import DPTransformer  # noqa: E402
from tamis.privacy.ledger import PrivacyLedger  # noqa: E402

SEED = 3


def private_frame(n: int = 400) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    return pl.DataFrame(
        {
            "n": rng.integers(0, 50, n),
            "x": rng.normal(10, 3, n),
            "c": rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]).tolist(),
            "d": rng.choice(["u", "v", "w"], n, p=[0.6, 0.3, 0.1]).tolist(),
        }
    )


class Built:
    def __init__(self, root: Path, name: str) -> None:
        self.store = Store(root / name)
        result = build(root / "pipeline.yaml", self.store)
        self.manifest: dict[str, Any] = result.versions["synth"]
        self.dir = self.store.version_dir(self.manifest["id"])
        self.model = json.loads((self.dir / "artifacts" / "dp_ctgan" / "dp_ctgan.json").read_text())
        self.rows = self.store.read(self.manifest["id"])


@pytest.fixture(scope="module")
def two_builds(
    tmp_path_factory: pytest.TempPathFactory, dp_ctgan_pipeline: Callable[[int], str]
) -> tuple[Built, Built]:
    root = tmp_path_factory.mktemp("dp_secure")
    private_frame().write_parquet(root / "private.parquet")
    (root / "pipeline.yaml").write_text(dp_ctgan_pipeline(SEED))
    return Built(root, "store_a"), Built(root, "store_b")


def _public_freqs(model: dict[str, Any]) -> np.ndarray:
    (c,) = [k for k in model["transformer"]["categorical"] if k["name"] == "c"]
    return np.asarray(c["freqs"])


def test_manifest_says_not_deterministic_and_keeps_its_cache_key(
    two_builds: tuple[Built, Built],
) -> None:
    a, b = two_builds
    assert a.manifest["step"]["deterministic"] is False
    # the cache key stays (inputs, params, seed): same id and seed in both stores
    assert a.manifest["id"] == b.manifest["id"] and a.manifest["seed"] == b.manifest["seed"] == SEED


def test_two_fresh_stores_with_the_same_seed_give_different_noise_and_rows(
    two_builds: tuple[Built, Built],
) -> None:
    a, b = two_builds
    # the released noisy category counts (over the public domain) differ
    assert not np.allclose(_public_freqs(a.model), _public_freqs(b.model))
    # and so do the learned (noisy) mode edges and the synthetic rows
    edges = [[c["edges"] for c in m.model["transformer"]["continuous"]] for m in (a, b)]
    assert edges[0] != edges[1]
    assert a.manifest["content_hash"] != b.manifest["content_hash"]
    assert not a.rows.equals(b.rows)


def _candidate_seeds(*docs: Any) -> set[int]:
    """Every integer a reader can find in what was stored, and integers derived from hex ids."""
    out: set[int] = set()

    def walk(v: Any) -> None:
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, bool):
            return
        elif isinstance(v, int) and v >= 0:
            out.update({v, v + 1})
        elif isinstance(v, float) and math.isfinite(v) and v >= 0 and v == int(v):
            out.add(int(v))
        elif isinstance(v, str) and len(v) >= 16 and all(ch in "0123456789abcdef" for ch in v):
            h = int(v, 16)
            out.update({h, h % 2**32, h % 2**64, int(v[:16], 16), int(v[:8], 16)})

    for d in docs:
        walk(d)
    return out


def _regenerate(model: dict[str, Any], df: pl.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """Re-run the preprocessing mechanisms with a guessed generator (the attack)."""
    cfg = model["config"]
    stats = model["stats"]
    ledger = PrivacyLedger(cfg["epsilon"], stats["delta"], cfg["accountant"])
    tr = DPTransformer.fit(
        df,
        DPCTGANConfig.model_validate(cfg).metadata(),
        ledger,
        sigma=stats["preprocess_noise_multiplier"],
        conditional=cfg["conditional"],
        n_modes=cfg["n_modes"],
        rng=rng,
        threshold_delta=stats["delta"] * cfg["threshold_delta_fraction"],
    )
    (c,) = [k for k in tr.categorical if k.name == "c"]
    return np.asarray(c.freqs)


def test_nothing_stored_regenerates_the_released_noise(two_builds: tuple[Built, Built]) -> None:
    a, _ = two_builds
    df = private_frame()
    released = _public_freqs(a.model)
    # positive control: when the noise comes from a known seed, the attack recovers it exactly
    known = _regenerate(a.model, df, np.random.default_rng(123))
    assert np.array_equal(known, _regenerate(a.model, df, np.random.default_rng(123)))
    report = a.manifest["report"]
    seeds = _candidate_seeds(a.manifest, report, a.model, DPCTGANConfig().model_dump())
    assert SEED in seeds and len(seeds) > 10
    for s in sorted(seeds):
        for rng in (np.random.default_rng(s), np.random.Generator(np.random.PCG64(s))):
            guess = _regenerate(a.model, df, rng)
            assert not np.allclose(guess, released, rtol=0, atol=1e-12), f"seed {s} regenerates it"


# -- only what the ledger pays for leaves the step --------------------------------------------
PUBLIC, PARAM, LEDGER, DP, POST = (
    "public metadata",
    "param",
    "ledger",
    "DP output",
    "post-processing",
)
_MECH = ("mechanisms", "[]", "*")  # every field of a ledger row
_LEDGER_TOTAL = ("total", "*")
LEDGER_FIELDS = {
    ("accountant",): LEDGER,
    ("neighbouring",): LEDGER,
    ("composition",): LEDGER,
    _MECH: LEDGER,
    _LEDGER_TOTAL: LEDGER,
}
STATS_FIELDS = {
    ("rows",): PUBLIC,  # n is public (documented assumption of the guarantee)
    ("noise_source",): PUBLIC,
    ("noise_multiplier",): LEDGER,
    ("sample_rate",): LEDGER,
    ("steps",): LEDGER,
    ("preprocess_noise_multiplier",): LEDGER,
    ("preprocess_histograms",): LEDGER,
    ("epsilon_spent",): LEDGER,
    ("delta",): LEDGER,
    ("opacus_dp_sgd_epsilon",): LEDGER,
}
MANIFEST_FIELDS: dict[tuple[str, ...], str] = {
    ("id",): PUBLIC,
    ("name",): PUBLIC,
    ("pipeline",): PUBLIC,
    ("created_at",): PUBLIC,
    ("parents", "[]", "id"): PUBLIC,
    ("parents", "[]", "role"): PUBLIC,
    ("cache_key",): PUBLIC,
    ("run_id",): PUBLIC,
    ("tamis_version",): PUBLIC,
    ("tables",): PUBLIC,
    ("artifacts",): PUBLIC,
    ("schema", "[]", "name"): PUBLIC,
    ("schema", "[]", "dtype"): PUBLIC,
    ("deterministic",): PUBLIC,
    ("seed",): PARAM,
    ("step", "name"): PUBLIC,
    ("step", "type"): PUBLIC,
    ("step", "version"): PUBLIC,
    ("step", "code"): PUBLIC,
    ("step", "output"): PUBLIC,
    ("step", "deterministic"): PUBLIC,
    ("step", "params", "**"): PARAM,
    ("rows",): PARAM,  # `rows` param, or n (public)
    ("content_hash",): POST,  # a hash of the synthetic rows
    ("replaced", "content_hash"): POST,  # after --force: the hash of the rows set aside
    ("replaced", "kept_in"): PUBLIC,
    ("files", "*", "sha256"): POST,  # hashes and sizes of released files
    ("files", "*", "size"): POST,
    ("files", "*", "mtime_ns"): PUBLIC,  # when the file was written (like created_at)
    ("parts", "[]", "path"): PUBLIC,  # where each part of the rows is (data/part-N.parquet)
    ("parts", "[]", "rows"): PARAM,  # the rows of a part: the `rows` param, or n, split
    ("parts", "[]", "bytes"): POST,  # sizes and hashes of the released rows
    ("parts", "[]", "sha256"): POST,
    ("report", "rows_in"): PUBLIC,
    ("report", "rows_out"): PARAM,
    ("report", "epsilon_spent"): LEDGER,
    ("report", "delta"): LEDGER,
    ("report", "target_epsilon"): PARAM,
    ("report", "model"): PUBLIC,
    **{("report", "privacy_ledger", *k): v for k, v in LEDGER_FIELDS.items()},
    **{("report", "training", *k): v for k, v in STATS_FIELDS.items()},
}
MODEL_FIELDS: dict[tuple[str, ...], str] = {
    **{("config", name): PARAM for name in DPCTGANConfig.model_fields if name != "columns"},
    ("config", "columns", "**"): PARAM,  # the public metadata the user passed
    ("seed",): PARAM,  # the pipeline seed: network initialisation and sampling only
    **{("ledger", *k): v for k, v in LEDGER_FIELDS.items()},
    **{("stats", *k): v for k, v in STATS_FIELDS.items()},
    ("transformer", "order"): PUBLIC,
    ("transformer", "continuous", "[]", "name"): PUBLIC,
    ("transformer", "continuous", "[]", "dtype"): PUBLIC,
    ("transformer", "continuous", "[]", "integer"): PUBLIC,
    ("transformer", "continuous", "[]", "bounds_source"): PUBLIC,
    ("transformer", "continuous", "[]", "edges"): DP,  # noisy bounds + noisy-CDF quantiles
    ("transformer", "continuous", "[]", "has_null"): DP,  # noisy null count above 3 sigma
    ("transformer", "categorical", "[]", "name"): PUBLIC,
    ("transformer", "categorical", "[]", "dtype"): PUBLIC,
    ("transformer", "categorical", "[]", "domain_source"): PUBLIC,
    ("transformer", "categorical", "[]", "categories"): DP,  # public domain or thresholded DP
    ("transformer", "categorical", "[]", "freqs"): POST,  # normalised noisy counts
}
CATALOG_FIELDS = {
    ("id",): PUBLIC,
    ("name",): PUBLIC,
    ("pipeline",): PUBLIC,
    ("step",): PUBLIC,
    ("step_type",): PUBLIC,
    ("created_at",): PUBLIC,
    ("rows",): PARAM,
    ("columns",): PUBLIC,
    ("content_hash",): POST,
    ("cache_key",): PUBLIC,
    ("schema_json",): PUBLIC,
    ("run_id",): PUBLIC,
}


def _leaves(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(value, dict) and value:
        return [p for k, v in value.items() for p in _leaves(v, (*path, str(k)))]
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [p for v in value for p in _leaves(v, (*path, "[]"))]
    return [path]


def _classify(path: tuple[str, ...], table: dict[tuple[str, ...], str]) -> str | None:
    for pattern, cls in table.items():
        if pattern[-1] == "**" and path[: len(pattern) - 1] == pattern[:-1]:
            return cls
        if len(pattern) == len(path) and all(
            p in ("*", q) for p, q in zip(pattern, path, strict=True)
        ):
            return cls
    return None


def test_every_field_leaving_the_step_is_public_param_ledger_or_dp(
    two_builds: tuple[Built, Built],
) -> None:
    a, _ = two_builds
    catalog = a.store.catalog.query("SELECT * FROM versions WHERE id = ?", [a.manifest["id"]])
    docs = {
        "manifest.json": (json.loads((a.dir / "manifest.json").read_text()), MANIFEST_FIELDS),
        "artifacts/dp_ctgan/dp_ctgan.json": (a.model, MODEL_FIELDS),
        "catalog row": (catalog[0], CATALOG_FIELDS),
    }
    # the generator's weights: trained only through the DP discriminator (post-processing)
    state = torch.load(a.dir / "artifacts" / "dp_ctgan" / "generator.pt", weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    files = {
        str(p.relative_to(a.dir)) for p in a.dir.rglob("*") if p.is_file()
    }  # every file of the version is walked here
    data = {str(f.relative_to(a.dir)) for f in a.store.data_files(a.manifest["id"])}
    assert files == {"manifest.json", *data, *(f"artifacts/{n}" for n in a.manifest["artifacts"])}
    assert set(a.manifest["artifacts"]) == {"dp_ctgan/dp_ctgan.json", "dp_ctgan/generator.pt"}
    assert a.rows.columns == private_frame().columns  # data files: synthetic rows (DP output)
    unclassified = [
        f"{where}: {'.'.join(path)}"
        for where, (doc, table) in docs.items()
        for path in _leaves(doc)
        if _classify(path, table) is None
    ]
    assert not unclassified, "fields computed without noise (or unclassified):\n" + "\n".join(
        unclassified
    )
    # the params class is honest: step params are exactly the step's declared params
    from tamis.privacy.dp.config import DPCTGANConfig as Params

    assert set(a.manifest["step"]["params"]) == set(Params.model_fields)
    text = (a.dir / "manifest.json").read_text() + json.dumps(a.model)
    for leaked in ("loss", "seconds"):
        assert leaked not in text


def test_forced_rebuild_keeps_the_rows_it_replaces(
    two_builds: tuple[Built, Built], tmp_path: Path
) -> None:
    """`--force` on a DP step gives other rows under the same id: the previous rows (which may
    have been released) are set aside in `replaced/`, never deleted, and the build says so."""
    a, _ = two_builds
    root = a.store.root.parent
    store = Store(tmp_path / "store")
    first = build(root / "pipeline.yaml", store).versions["synth"]
    before = store.read(first["id"])
    second = build(root / "pipeline.yaml", store, force=True)
    manifest = second.versions["synth"]
    assert manifest["id"] == first["id"]
    assert manifest["content_hash"] != first["content_hash"]
    kept = Path(manifest["replaced"]["kept_in"])
    assert kept.parent == store.replaced_dir
    assert manifest["replaced"]["content_hash"] == first["content_hash"]
    old = kept / "data" if (kept / "data").is_dir() else kept / "data.parquet"
    assert pl.scan_parquet(old).collect().equals(before)
    (record,) = [s for s in second.steps if s.name == "synth"]
    assert any("previous rows are kept in" in w for w in record.warnings)
