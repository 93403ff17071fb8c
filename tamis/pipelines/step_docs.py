"""A step type's reference as Markdown, generated from its params model (`Step.describe()`):
what `tamis steps --markdown` prints and the docs' param tables are made of."""

from __future__ import annotations

import json
from typing import Any


def _cell(text: Any) -> str:
    """A Markdown table cell: one line, `|` escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _default(param: dict[str, Any]) -> str:
    if param["required"]:
        return "required"
    return f"`{json.dumps(param['default'], default=str)}`"


def step_markdown(described: dict[str, Any]) -> str:
    """The Markdown section of one step type (`StepType.describe()`): heading with its kind, its
    doc line, inputs, and one row per param (name, type, default, help)."""
    doc = " ".join(described["doc"].split())  # a docstring's first paragraph, on one line
    lines = [f"### `{described['name']}` ({described['kind']})", "", doc, ""]
    inputs = ", ".join(f"`{i}`" for i in described["inputs"]) or "(none)"
    if described.get("optional_inputs"):
        inputs += " (optional: " + ", ".join(f"`{i}`" for i in described["optional_inputs"]) + ")"
    lines.append(f"Inputs: {inputs}.")
    if described.get("extra"):
        lines.append(f"Needs: `pip install 'tamis[{described['extra']}]'`.")
    lines.append("")
    if not described["params"]:
        lines.append("No params.")
        return "\n".join(lines) + "\n"
    lines += ["| param | type | default | description |", "|---|---|---|---|"]
    for p in described["params"]:
        row = [f"`{p['name']}`", _cell(p["type"]), _cell(_default(p)), _cell(p["doc"])]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


REFERENCE_HEADER = """# Step types

Every step type with its kind (map, keyed or global), inputs and params. Generated from each step's
params model by `tamis steps --markdown > docs/steps.md`; do not edit by hand (a test checks it).
"""


def steps_markdown(described: list[dict[str, Any]], *, header: bool = False) -> str:
    """The sections of several step types, one after the other (with the reference's title)."""
    body = "\n".join(step_markdown(d) for d in described)
    return (REFERENCE_HEADER + "\n" + body) if header else body
