"""The checked pipeline: every step against its step type, dependency order, build targets.

`check_steps` runs when the YAML loads (`parse_pipeline`): an unknown step type, invalid params,
an unknown or missing input, a list given to a one-name input, or a reference to a source, step
or output that does not exist is a `SpecError` naming the file and the step before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from tamis.config import load_config
from tamis.errors import SpecError
from tamis.pipelines.registry import get_step_type
from tamis.pipelines.spec import InputRef, PipelineSpec, StepInputs, StepSpec, flat_refs
from tamis.pipelines.steps.base import MAIN_OUTPUT, Step, StepParams


@dataclass
class PlannedStep:
    """One step of a pipeline, checked: its type, validated params, parsed inputs, outputs."""

    name: str
    spec: StepSpec
    step_type: type[Step]
    params: StepParams
    inputs: StepInputs
    outputs: tuple[str, ...]

    def refs(self) -> list[InputRef]:
        return [ref for _key, ref in flat_refs(self.inputs)]

    def upstream(self) -> set[str]:
        """The steps this one reads."""
        return {ref.base for ref in self.refs() if ref.kind == "step"}


def _check_input_names(spec: PipelineSpec, name: str, step_type: type[Step]) -> None:
    """Every input a step type takes, given; none it does not; lists only where it takes them."""

    def refuse(message: str, fix: str, field: str | None = None) -> SpecError:
        return SpecError(message, file=spec.file, step=name, field=field, fix=fix)

    named = spec.steps[name].named_inputs()
    allowed = set(step_type.inputs) | set(step_type.optional_inputs)
    for key, value in named.items():
        if key not in allowed:
            raise refuse(
                f"step type '{step_type.name}' takes no input '{key}'",
                f"its inputs: {', '.join(sorted(allowed)) or '(none)'}",
            )
        if isinstance(value, list) and key not in step_type.list_inputs:
            raise refuse(
                f"input '{key}' takes one name, not a list",
                f"give one source or step name; list inputs of '{step_type.name}': "
                f"{', '.join(step_type.list_inputs) or '(none)'}",
                field=key,
            )
    for key in step_type.inputs:
        if key not in named:
            raise refuse(f"missing input '{key}'", f"add `{key}: <source or step name>`")


def _check_exists(spec: PipelineSpec, name: str, ref: InputRef) -> None:
    if ref.kind == "step" and ref.base not in spec.steps:
        known = ", ".join([*spec.sources, *spec.steps])
        raise SpecError(
            f"input '{ref.text}' names no source or step",
            file=spec.file,
            step=name,
            fix=f"known names: {known}",
        )


def _check_output(spec: PipelineSpec, name: str, ref: InputRef, has: tuple[str, ...]) -> None:
    """A step reference names an output its step has (`step` its main output)."""
    if ref.output is None and MAIN_OUTPUT in has:
        return
    if ref.output is not None and ref.output in has and ref.output != MAIN_OUTPUT:
        return
    names = [ref.base if o == MAIN_OUTPUT else f"{ref.base}.{o}" for o in has]
    raise SpecError(
        f"input '{ref.text}' is not an output of step '{ref.base}'",
        file=spec.file,
        step=name,
        fix=f"name one of its outputs: {', '.join(names)}",
    )


def check_steps(spec: PipelineSpec) -> dict[str, PlannedStep]:
    """Check every step against its type and every input reference; see the module docstring.

    The shape first (step types, input names, referenced names), then each step's params, then
    the outputs that `step.output` references name.
    """
    types = {n: get_step_type(s.use, file=spec.file, step=n) for n, s in spec.steps.items()}
    refs = {n: s.input_refs(spec.sources) for n, s in spec.steps.items()}
    for name in spec.steps:
        _check_input_names(spec, name, types[name])
        for _key, ref in flat_refs(refs[name]):
            _check_exists(spec, name, ref)
    plan: dict[str, PlannedStep] = {}
    for name, step in spec.steps.items():
        step_type = types[name]
        params = load_config(
            step_type.Params, step.params, file=spec.file, step=name, what=step_type.name
        )
        outputs = tuple(step_type().output_names(params))
        plan[name] = PlannedStep(name, step, step_type, params, refs[name], outputs)
    for name, planned in plan.items():
        for ref in planned.refs():
            if ref.kind == "step":
                _check_output(spec, name, ref, plan[ref.base].outputs)
    return plan


def topological(spec: PipelineSpec) -> list[str]:
    """Step names in dependency order (YAML order breaks ties); a cycle is a SpecError."""
    deps = {name: planned.upstream() for name, planned in spec.plan().items()}
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
    """The steps of `order` that `wanted` needs, itself included."""
    plan = spec.plan()
    keep = set(wanted)
    for name in reversed(order):
        if name in keep:
            keep |= plan[name].upstream()
    return [n for n in order if n in keep]
