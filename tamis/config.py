"""The one style of typed config in tamis: a pydantic model, unknown fields refused, help on every field.

A capability owns its config (`DedupConfig`, `DPCTGANConfig`, ...); its function takes that model
whole, and the pipeline step re-uses the same model as its params, so each param is declared once.
`tamis steps NAME`, the docs' param tables and validation errors are all generated from it.

    from pydantic import Field
    from tamis.config import Config

    class DedupConfig(Config):
        columns: Literal["all"] | list[str] = Field("all", description="columns compared")

`load_config` is the one door from a YAML mapping (or a Python dict) to a config: a validation error
becomes a `SpecError` that names the file, the step, the field and lists the valid names.
"""

from __future__ import annotations

import difflib
from typing import Any, TypedDict, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tamis.errors import SpecError

C = TypeVar("C", bound=BaseModel)


class Config(BaseModel):
    """Base of every typed config: an unknown field is an error that lists the valid names."""

    model_config = ConfigDict(extra="forbid")


class FieldDoc(TypedDict):
    """One field of a config as `tamis steps NAME` and the docs show it."""

    name: str
    type: str
    required: bool
    default: Any
    doc: str


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and not getattr(annotation, "__args__", None):
        return annotation.__name__
    return str(annotation).replace("typing.", "").replace("NoneType", "None")


def describe_config(model: type[BaseModel]) -> list[FieldDoc]:
    """Every field of a config with its type, default and help text."""
    fields: list[FieldDoc] = []
    for name, info in model.model_fields.items():
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        fields.append(
            FieldDoc(
                name=name,
                type=_type_name(info.annotation),
                required=info.is_required(),
                default=default,
                doc=info.description or "",
            )
        )
    return fields


def fields_without_help(model: type[BaseModel]) -> list[str]:
    """Names of the fields that carry no help text (the contract test wants none)."""
    return [name for name, info in model.model_fields.items() if not (info.description or "")]


def load_config(
    model: type[C],
    raw: Any,
    *,
    file: str | None = None,
    step: str | None = None,
    prefix: str = "params",
    what: str | None = None,
) -> C:
    """Validate `raw` (a mapping from YAML or Python) into `model`, or raise a clear `SpecError`.

    The error names the first invalid field as `<prefix>.<field>` and its fix: the allowed values
    for a literal, the close valid names for a typo, or every valid name.
    """
    if raw is None:
        raw = {}
    if isinstance(raw, model):
        return raw
    if not isinstance(raw, dict):
        raise SpecError(
            f"{prefix} must be a mapping of names to values, got {type(raw).__name__}",
            file=file,
            step=step,
            field=prefix,
            fix=f"valid names: {', '.join(model.model_fields) or '(none)'}",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = [str(x) for x in err.get("loc", ())]
        field_name = ".".join(loc)
        valid = list(model.model_fields)
        owner = f" of '{what}'" if what else ""
        fix = f"valid names{owner}: {', '.join(valid) or '(none)'}"
        if err.get("type") == "extra_forbidden" and loc:
            close = difflib.get_close_matches(loc[0], valid, n=3)
            if close:
                fix = f"did you mean {', '.join(close)}? " + fix
        elif err.get("type") == "literal_error":
            fix = str(err["msg"])
        elif loc and loc[0] in model.model_fields:
            doc = model.model_fields[loc[0]].description
            if doc:
                fix = f"{loc[0]}: {doc}"
        raise SpecError(
            str(err["msg"]),
            file=file,
            step=step,
            field=f"{prefix}.{field_name}" if field_name else prefix,
            fix=fix,
        ) from None
