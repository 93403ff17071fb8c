"""SDV model files: saved as cloudpickle, loaded only from inside a store's versions.

A pickle runs code when loaded, so `load_model` accepts only a file inside
`<store>/versions/<id>/artifacts/` whose bytes are the ones the store recorded in the version's
manifest when it wrote it; never point it at a file someone sent you.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tamis.errors import TamisError

MODEL_FILE = "synthesizer.pkl"


def save_model(model: Any, directory: Path) -> Path:
    """Save a fitted synthesizer (a cloudpickle file) into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    model.save(str(path))
    return path


def load_model(path: str | Path, store_root: str | Path) -> Any:
    """Load a synthesizer that a tamis store wrote. Refuses any file outside the store's versions.

    The file is a pickle: loading one runs code. Only files inside
    `<store>/versions/<id>/artifacts/` are accepted, i.e. files the store itself wrote.
    """
    p = Path(path).resolve()
    versions = (Path(store_root) / "versions").resolve()
    if not p.is_relative_to(versions) or "artifacts" not in p.relative_to(versions).parts:
        raise TamisError(
            f"refusing to unpickle {p}: it is not a model file written by the store at {store_root}",
            file=str(p),
            fix="only load models from <store>/versions/<id>/artifacts/; never load a pickle "
            "you did not create",
        )
    if not p.exists():
        raise TamisError("model file not found", file=str(p))
    _check_recorded_hash(p, versions)
    from sdv.utils import load_synthesizer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_synthesizer(str(p))


def _check_recorded_hash(path: Path, versions: Path) -> None:
    """Refuse a model file whose bytes are not the ones the store recorded when it wrote the
    version (`manifest.json` `files`): a pickle swapped in after the write is never loaded."""
    import hashlib
    import json

    vdir = versions / path.relative_to(versions).parts[0]
    rel = path.relative_to(vdir).as_posix()
    try:
        record = json.loads((vdir / "manifest.json").read_text())["files"][rel]
        expected = str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        raise TamisError(
            f"refusing to unpickle {path}: the store recorded no content hash for it",
            file=str(path),
            fix="rebuild the step that wrote it (`tamis build ... --force`) and load the new file",
        ) from None
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    if digest.hexdigest() != expected:
        raise TamisError(
            f"refusing to unpickle {path}: its bytes are not the ones the store wrote",
            file=str(path),
            fix="run `tamis verify`; rebuild the step that wrote it with `--force`",
        )
