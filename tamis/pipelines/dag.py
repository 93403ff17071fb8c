"""The pipeline DAG: params validation, dependency order, and the ancestors of build targets."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from tamis.errors import SpecError
from tamis.pipelines.spec import PipelineSpec
from tamis.pipelines.steps.base import Step, StepParams


def validate_params(
    step_type: type[Step], raw: dict[str, Any], *, file: str, step: str
) -> StepParams:
    try:
        return step_type.Params.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        field_name = ".".join(str(x) for x in err.get("loc", ())) or "params"
        valid = ", ".join(step_type.Params.model_fields) or "(none)"
        fix = f"valid params of '{step_type.name}': {valid}"
        if err.get("type") == "literal_error":
            fix = f"{err['msg']}"
        raise SpecError(
            err["msg"], file=file, step=step, field=f"params.{field_name}", fix=fix
        ) from None


def topological(spec: PipelineSpec) -> list[str]:
    deps: dict[str, set[str]] = {}
    for name, step in spec.steps.items():
        refs: set[str] = set()
        for value in step.named_inputs().values():
            for ref in [value] if isinstance(value, str) else value:
                if ref.startswith("@"):
                    continue
                base = ref.split(".", 1)[0] if ref not in spec.sources else ref
                if base in spec.sources:
                    continue
                if base not in spec.steps:
                    known = ", ".join([*spec.sources, *spec.steps])
                    raise SpecError(
                        f"input '{ref}' names no source or step",
                        file=spec.file,
                        step=name,
                        fix=f"known names: {known}",
                    )
                refs.add(base)
        deps[name] = refs
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 2:
            return
        if state.get(node) == 1:
            raise SpecError(f"steps form a cycle: {' -> '.join([*path, node])}", file=spec.file)
        state[node] = 1
        for dep in sorted(deps[node]):
            visit(dep, [*path, node])
        state[node] = 2
        order.append(node)

    for node in spec.steps:  # YAML order breaks ties, so builds read top to bottom
        visit(node, [])
    return order


def with_ancestors(spec: PipelineSpec, order: list[str], wanted: set[str]) -> list[str]:
    keep = set(wanted)
    for name in reversed(order):
        if name in keep:
            for value in spec.steps[name].named_inputs().values():
                for ref in [value] if isinstance(value, str) else value:
                    keep.add(ref.split(".", 1)[0])
    return [n for n in order if n in keep]
