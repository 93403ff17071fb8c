"""Loading training data and checking it has the columns a method needs, before any training.

The train package knows nothing of the store: callers pass Polars/pandas frames (the CLI resolves
store refs) or a file path (Parquet, CSV, JSON lines).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tamis.errors import TamisError

if TYPE_CHECKING:
    from datasets import Dataset

#: The formats each method reads, and the tamis steps that produce them (named in errors).
FORMATS: dict[str, dict[str, Any]] = {
    "sft": {
        "alternatives": [["prompt", "completion"], ["messages"]],
        "text": "prompt/completion columns (strings), or a `messages` column (list of "
        "{role, content} structs)",
        "produced_by": "any step that keeps prompt/completion text (e.g. `normalize`, `filter`), "
        "or the `chosen` side of `preference_pairs`/`tone_pairs` with completion_field=chosen",
    },
    "rm": {
        "alternatives": [["prompt", "chosen", "rejected"], ["chosen", "rejected"]],
        "text": "preference pairs: prompt, chosen, rejected (strings)",
        "produced_by": "the `preference_pairs` step (from: transcripts|ratings|rankings|votes) "
        "or the `tone_pairs` step",
    },
    "ppo": {
        "alternatives": [["prompt"]],
        "text": "a `prompt` column (strings); responses are sampled from the policy",
        "produced_by": "the `preference_pairs` or `tone_pairs` step (their prompt column), "
        "or any frame with a prompt column",
    },
}
FORMATS["dpo"] = FORMATS["rm"]


def load_frame(data: Any, *, what: str = "data") -> pl.DataFrame:
    """A Polars frame from a Polars/pandas frame, a `datasets.Dataset`, or a file path."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, str | Path):
        path = Path(data)
        if not path.exists():
            raise TamisError(
                f"{what} file does not exist",
                file=str(path),
                fix="pass a store ref (<pipeline>/<step>) or an existing .parquet/.csv/.jsonl file",
            )
        suffix = path.suffix.lower()
        if path.is_dir():
            return load_directory(path, what)
        if suffix == ".parquet":
            return pl.read_parquet(path)
        if suffix == ".csv":
            return pl.read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            return pl.read_ndjson(path)
        if suffix == ".json":
            return pl.read_json(path)
        raise TamisError(
            f"cannot read {what} files of type '{suffix}'",
            file=str(path),
            fix="use Parquet, CSV or JSON lines",
        )
    try:
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pl.from_pandas(data)
    except ImportError:  # pragma: no cover
        pass
    if hasattr(data, "to_polars"):
        return data.to_polars()
    raise TamisError(
        f"cannot use {what} of type {type(data).__name__}",
        fix="pass a Polars or pandas DataFrame or a file path",
    )


def load_directory(path: Path, what: str = "data") -> pl.DataFrame:
    """A folder of Parquet files, or a Hugging Face dataset saved with `save_to_disk` (what
    `tamis export --format hf` writes; a `DatasetDict` with one split is read as that split)."""
    if (path / "state.json").exists() or (path / "dataset_dict.json").exists():
        return _load_hf_dir(path, what)
    if any(path.glob("*.parquet")):
        return pl.read_parquet(path / "*.parquet")
    raise TamisError(
        f"{what} directory holds neither .parquet files nor a Hugging Face dataset "
        "(no state.json or dataset_dict.json from `save_to_disk`)",
        file=str(path),
        fix="pass a folder written by `tamis export --format hf` (datasets save_to_disk), a "
        "folder of .parquet files, a .parquet/.csv/.jsonl file, or a store ref",
    )


def _load_hf_dir(path: Path, what: str) -> pl.DataFrame:
    try:
        import datasets
    except ImportError as exc:
        from tamis.errors import MissingDependencyError

        raise MissingDependencyError(
            f"reading a Hugging Face dataset folder as {what} needs the `datasets` package",
            file=str(path),
            fix="pip install 'tamis[train]'",
        ) from exc
    try:
        ds = datasets.load_from_disk(str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise TamisError(
            f"cannot read the Hugging Face dataset folder: {exc}",
            file=str(path),
            fix="re-export it with `tamis export REF --to DIR --format hf`, or pass a "
            ".parquet/.csv/.jsonl file",
        ) from exc
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if len(splits) != 1:
            raise TamisError(
                f"{what} folder is a Hugging Face DatasetDict with splits {splits}: "
                "which one to read is not clear",
                file=str(path),
                fix=f"pass one split's folder, e.g. --data {path / splits[0]}"
                + (f" --eval {path / splits[1]}" if len(splits) > 1 else ""),
                details={"splits": splits},
            )
        ds = ds[splits[0]]
    table = ds.with_format("arrow")[:]
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def check_columns(df: pl.DataFrame, method: str, *, what: str = "data") -> list[str]:
    """Return the column set `df` matches for `method`, or raise naming the expected format."""
    spec = FORMATS[method]
    for cols in spec["alternatives"]:
        if all(c in df.columns for c in cols):
            for c in cols:
                if c != "messages" and df.schema[c] != pl.String and not _is_messages(df, c):
                    raise TamisError(
                        f"{what} column '{c}' must hold strings (or lists of {{role, content}} "
                        f"messages), found {df.schema[c]}",
                        column=c,
                        fix=f"`tamis train {method}` reads {spec['text']}",
                    )
            if df.height == 0:
                raise TamisError(
                    f"{what} is empty: `tamis train {method}` needs at least one row",
                    fix="check the filters upstream, or pass a larger data version",
                )
            return list(cols)
    missing = [c for c in spec["alternatives"][0] if c not in df.columns]
    raise TamisError(
        f"{what} lacks the columns `tamis train {method}` needs: {spec['text']}; "
        f"found {df.columns}",
        column=missing[0] if missing else None,
        fix=f"produce them with {spec['produced_by']}",
        details={"expected": spec["alternatives"], "found": df.columns},
    )


def drop_null_text(df: pl.DataFrame, cols: list[str]) -> pl.DataFrame:
    return df.drop_nulls([c for c in cols if c in df.columns])


def split_eval(
    train: pl.DataFrame, eval_df: pl.DataFrame | None, fraction: float, seed: int, method: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Use `eval_df` when given, else hold out a seeded `fraction` of `train`. Empty splits fail."""
    if eval_df is None:
        if not 0.0 < fraction < 1.0:
            raise TamisError(
                f"eval_fraction must be in (0, 1), got {fraction}",
                field="eval_fraction",
                fix="pass --eval REF or set eval_fraction to e.g. 0.2",
            )
        n_eval = int(round(train.height * fraction))
        shuffled = train.sample(fraction=1.0, shuffle=True, seed=seed)
        eval_df, train = shuffled.head(n_eval), shuffled.tail(train.height - n_eval)
    for name, frame in (("training", train), ("evaluation", eval_df)):
        if frame.height == 0:
            raise TamisError(
                f"the {name} split is empty (tamis train {method} needs rows in both splits)",
                fix="pass more rows, a non-empty --eval data version, or change eval_fraction",
            )
    return train, eval_df


def _is_messages(df: pl.DataFrame, col: str) -> bool:
    dtype = df.schema[col]
    if not isinstance(dtype, pl.List) or not isinstance(dtype.inner, pl.Struct):
        return False
    names = {f.name for f in dtype.inner.fields}
    return {"role", "content"} <= names


def is_conversational(df: pl.DataFrame) -> bool:
    """True when prompt/chosen/rejected/completion hold {role, content} message lists."""
    cols = [c for c in ("prompt", "chosen", "rejected", "completion") if c in df.columns]
    return any(_is_messages(df, c) for c in cols)


def texts_of(df: pl.DataFrame) -> list[str]:
    """Every text in the known text columns (to train the tiny tokenizer)."""
    out: list[str] = []
    for col in ("prompt", "completion", "chosen", "rejected", "text", "messages"):
        if col not in df.columns:
            continue
        if df.schema[col] == pl.String:
            out.extend(s for s in df[col].to_list() if s)
        elif _is_messages(df, col):
            for conv in df[col].to_list():
                out.extend(m["content"] for m in conv or [] if m and m.get("content"))
    return out


def render_conversational(df: pl.DataFrame, tok: Any) -> pl.DataFrame:
    """Turn message-list columns into text with the tokenizer's chat template.

    prompt -> template(prompt, add_generation_prompt); chosen/rejected/completion -> the text the
    template adds after the prompt (without a final EOS: the trainers add it).
    """
    if not is_conversational(df):
        return df
    if getattr(tok, "chat_template", None) is None:
        raise TamisError(
            "conversational data needs a tokenizer with a chat template",
            field="model",
            fix="use a chat model (or --model tiny, which has one), or pass format=standard data",
        )
    eos = tok.eos_token or ""
    rows = df.to_dicts()
    out: dict[str, list[str]] = {}
    for col in ("prompt", "chosen", "rejected", "completion"):
        if col not in df.columns or not _is_messages(df, col):
            continue
        texts = []
        for row in rows:
            prompt = row.get("prompt") if _is_messages(df, "prompt") else None
            if col == "prompt":
                texts.append(
                    tok.apply_chat_template(row[col], tokenize=False, add_generation_prompt=True)
                )
                continue
            head = (
                tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
                if prompt
                else ""
            )
            full = tok.apply_chat_template((prompt or []) + row[col], tokenize=False)
            text = full[len(head) :] if full.startswith(head) else full
            texts.append(text[: -len(eos)] if eos and text.endswith(eos) else text)
        out[col] = texts
    return df.with_columns([pl.Series(c, v, dtype=pl.String) for c, v in out.items()])


def to_dataset(df: pl.DataFrame, cols: list[str]) -> Dataset:
    """A `datasets.Dataset` with only the columns the trainer needs."""
    from datasets import Dataset

    return Dataset.from_list(df.select(cols).to_dicts())
