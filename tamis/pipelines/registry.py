"""The registry of step types: every `Step` subclass in `tamis/pipelines/steps/` is registered.

Adding a step type is adding one module to that folder; nothing else is edited. Step modules keep
heavy imports (torch, sdv, great_expectations...) inside `run`, so listing steps stays fast.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from functools import cache

from tamis.errors import SpecError
from tamis.pipelines import steps as steps_pkg
from tamis.pipelines.steps.base import Step


@cache
def step_types() -> dict[str, type[Step]]:
    found: dict[str, type[Step]] = {}
    for info in pkgutil.iter_modules(steps_pkg.__path__):
        if info.name.startswith("_") or info.name == "base":
            continue
        module = importlib.import_module(f"{steps_pkg.__name__}.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Step) and obj is not Step and obj.name:
                if obj.name in found and found[obj.name] is not obj:
                    raise RuntimeError(f"two step types are named '{obj.name}'")
                found[obj.name] = obj
    return dict(sorted(found.items()))


def get_step_type(name: str, *, file: str | None = None, step: str | None = None) -> type[Step]:
    types = step_types()
    if name not in types:
        close = difflib.get_close_matches(name, types, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise SpecError(
            f"unknown step type '{name}'",
            file=file,
            step=step,
            field="use",
            fix=f"{hint}valid step types: {', '.join(types)}",
        )
    return types[name]
