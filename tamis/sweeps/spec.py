"""The sweep YAML: a grid of data versions x one recipe x seeds, validated with pydantic.

    name: label_noise
    recipe: {use: classifier, params: {target: target}}
    seeds: [0, 1, 2, 3, 4]
    baseline: clean
    datasets:                        # data shipped with installed packages (offline)
      digits: {loader: "sklearn:digits"}
    pipeline:                        # built once per seed (pipeline seed = cell seed)
      name: label_noise
      steps:
        split: {use: split, input: digits, seed: 0, params: {...}}   # fixed seed: fixed test set
        noisy: {use: inject_label_noise, input: split.train, params: {...}}
    versions:                        # version name -> a pipeline step, or `@REF` from the store
      clean: split.train
      noisy: noisy
      external: "@adult/dedup"
    test: split.test                 # one fixed real test set for every cell

A version may also be a mapping: `{step: NAME | ref: REF, audit: STEP, params: {...}}`, where
`audit` names a step whose report holds figures listed under `figures:` (e.g. an MIA AUC) and
`params` overrides recipe params for that version.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from tamis.config import Config
from tamis.errors import SpecError
from tamis.pipelines.spec import Name
from tamis.safe_yaml import safe_load_yaml


class VersionSpec(Config):
    """One data version of the grid."""

    step: str | None = Field(default=None, description="a step (or step.output) of `pipeline`")
    ref: str | None = Field(default=None, description="an id, id prefix or ref in the store")
    audit: str | None = Field(
        default=None, description="a step (or ref with @) whose report holds the `figures`"
    )
    params: dict[str, Any] = Field(default_factory=dict, description="recipe params overrides")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"ref": value[1:]} if value.startswith("@") else {"step": value}
        return value

    @model_validator(mode="after")
    def _one_source(self) -> VersionSpec:
        if (self.step is None) == (self.ref is None):
            raise ValueError(
                "give exactly one of `step` (a pipeline step) or `ref` (a stored version)"
            )
        return self


class RecipeSpec(Config):
    """What each cell trains (`recipe:`)."""

    use: str = Field(description="classifier, tstr, sft, rm, dpo or ppo")
    params: dict[str, Any] = Field(
        default_factory=dict, description="the recipe's params (checked against the recipe)"
    )


class DatasetSpec(Config):
    """A dataset shipped with an installed package (offline), injected as a pipeline source."""

    loader: str = Field(description="`sklearn:NAME` (a bundled load_NAME) or `statsmodels:NAME`")
    options: dict[str, Any] = Field(default_factory=dict, description="keyword args of the loader")


class TradeoffPlot(Config):
    """The utility-privacy trade-off plot: one point per version."""

    x: str = Field(description="privacy figure (e.g. mia_auc)")
    y: str = Field(description="utility metric (e.g. auc)")


class SweepSpec(Config):
    """A sweep YAML: a grid of data versions x one recipe x seeds."""

    name: Name = Field(description="the sweep's name (letters, digits, '_' or '-')")
    description: str = Field(default="", description="one line shown in lists and the report")
    recipe: RecipeSpec = Field(description="what each cell trains: `{use: NAME, params: {...}}`")
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2], description="seeds: one pipeline build and cell each"
    )
    baseline: str | None = Field(default=None, description="version the deltas are against")
    datasets: dict[str, DatasetSpec] = Field(
        default_factory=dict, description="bundled datasets, as sources of `pipeline`"
    )
    pipeline: dict[str, Any] | str | None = Field(
        default=None, description="a pipeline (inline or a YAML path) built once per seed"
    )
    versions: dict[str, VersionSpec] = Field(
        description="version name -> a pipeline step, `@REF` or `{step|ref, audit, params}`"
    )
    test: VersionSpec | None = Field(
        default=None, description="the fixed test set every cell is scored on"
    )
    figures: dict[str, str] = Field(
        default_factory=dict,
        description="figure name -> dotted path into each version's `audit` report",
    )
    tradeoff: TradeoffPlot | None = Field(
        default=None, description="`{x: PRIVACY_FIGURE, y: METRIC}`: the trade-off plot"
    )
    metrics: list[str] | None = Field(default=None, description="metrics to tabulate")
    n_boot: int = Field(
        default=2000, ge=100, description="bootstrap replicates (test rows and seeds resampled)"
    )
    seed: int = Field(default=0, description="seed of the bootstrap's random generator")
    base_dir: str = Field(default=".", description="where the YAML lives (set by the loader)")
    file: str = Field(default="<memory>", description="the YAML file (set by the loader)")

    @field_validator("seeds")
    @classmethod
    def _seeds_ok(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("give at least one seed")
        if len(set(value)) != len(value):
            raise ValueError("seeds repeat")
        return value

    @model_validator(mode="after")
    def _refs_ok(self) -> SweepSpec:
        if not self.versions:
            raise ValueError("versions: give at least one data version")
        if self.baseline is None:
            self.baseline = next(iter(self.versions))
        elif self.baseline not in self.versions:
            raise ValueError(
                f"baseline '{self.baseline}' is not a version (versions: {', '.join(self.versions)})"
            )
        uses_steps = any(v.step for v in [*self.versions.values(), self.test] if v is not None)
        if uses_steps and self.pipeline is None:
            raise ValueError("versions name pipeline steps but the sweep has no `pipeline:`")
        return self


def builtin_dir() -> Path:
    return Path(str(resources.files("tamis.sweeps") / "builtin"))


def builtin_names() -> list[str]:
    return sorted(p.stem for p in builtin_dir().glob("*.yaml"))


def builtin_sweeps() -> list[dict[str, Any]]:
    """Every built-in sweep: name, recipe, versions, seeds, description and its YAML file."""
    rows = []
    for name in builtin_names():
        spec = load_sweep(name)
        rows.append(
            {
                "name": name,
                "recipe": spec.recipe.use,
                "versions": list(spec.versions),
                "seeds": spec.seeds,
                "description": spec.description,
                "file": str(builtin_dir() / f"{name}.yaml"),
            }
        )
    return rows


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` or `0..4` (both ends included) as a list of seeds."""
    try:
        if ".." in text:
            lo, hi = text.split("..", 1)
            return list(range(int(lo), int(hi) + 1))
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise SpecError(
            f"cannot read --seeds '{text}'",
            field="--seeds",
            fix="write e.g. --seeds 0,1,2 or --seeds 0..4",
        ) from None


def overrides_of(seeds: str | None, sets: list[str] | None) -> dict[str, Any]:
    """The spec overrides of `--seeds 0..4` and `--set recipe.params.model=gbm` (YAML values)."""
    data: dict[str, Any] = {}
    if seeds:
        data["seeds"] = parse_seeds(seeds)
    for item in sets or []:
        if "=" not in item:
            raise SpecError(
                f"--set '{item}' has no '='",
                field="--set",
                fix="write --set recipe.params.model=gbm",
            )
        key, _, raw = item.partition("=")
        try:
            value = safe_load_yaml(raw, file="--set")
        except SpecError as exc:
            raise SpecError(
                f"--set '{item}': the value is {exc.message}",
                field="--set",
                fix="the value is read as YAML: quote text, e.g. --set description='\"a: b\"'",
            ) from None
        set_dotted(data, key.strip(), value)
    return data


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    """`recipe.params.model=gbm` style override on a loaded YAML document."""
    parts = dotted.split(".")
    node = data
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise SpecError(f"cannot set '{dotted}': '{part}' is not a mapping", field=dotted)
    node[parts[-1]] = value


def parse_sweep(
    data: Any,
    *,
    file: str = "<memory>",
    base_dir: str = ".",
    overrides: dict[str, Any] | None = None,
) -> SweepSpec:
    if not isinstance(data, dict):
        raise SpecError("a sweep must be a YAML mapping with name, recipe and versions", file=file)
    if overrides:
        data = _merge(data, overrides)
    try:
        return SweepSpec.model_validate({**data, "base_dir": base_dir, "file": file})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(x) for x in err.get("loc", ()))
        fix = None
        if err.get("type") == "extra_forbidden":
            top = [f for f in SweepSpec.model_fields if f not in ("base_dir", "file")]
            fix = f"valid keys: {', '.join(top)}"
            if field.startswith("versions.") or field.startswith("test."):
                fix = "valid version keys: step, ref, audit, params"
        raise SpecError(err["msg"], file=file, field=field or None, fix=fix) from None


def load_sweep(name_or_path: str | Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """A built-in sweep by name (`label_noise`) or a sweep YAML file."""
    path = Path(name_or_path)
    if not path.exists():
        candidate = builtin_dir() / f"{name_or_path}.yaml"
        if not candidate.exists():
            raise SpecError(
                f"no sweep file or built-in sweep named '{name_or_path}'",
                file=str(name_or_path),
                fix=f"pass a YAML path or one of: {', '.join(builtin_names())}",
            )
        path = candidate
    # duplicate keys and alias bombs refused (the pure-Python loader: a few ms for a sweep)
    data = safe_load_yaml(path.read_text(), file=str(path))
    return parse_sweep(
        data, file=str(path), base_dir=str(path.parent.resolve()), overrides=overrides
    )
