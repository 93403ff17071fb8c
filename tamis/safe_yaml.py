"""Loading YAML a user wrote (pipelines, sweeps, policies, configs): yaml.safe_load, plus refusals.

Duplicate mapping keys are an error naming both lines (two steps with one name: the last silently
won), and alias bombs are refused (a 472-byte "billion laughs" document expanded to 530 MB).
Every problem becomes a `SpecError` naming the file. Every module that reads a user's YAML uses
`safe_load_yaml`.
"""

from __future__ import annotations

from typing import Any

import yaml

from tamis.errors import SpecError

#: a YAML document may hold at most this many nodes once its aliases are expanded, and at most
#: this many aliases: a 472-byte "billion laughs" document otherwise expands to hundreds of MB
MAX_YAML_NODES = 200_000
MAX_YAML_ALIASES = 10_000


class _YamlLimit(yaml.YAMLError):
    """A YAML document refused by the loader (duplicate key, alias bomb): message for the user."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate mapping keys and alias bombs.

    Duplicate keys (two steps with one name: the last silently won) name both lines. Aliases are
    counted as they are composed, and the document's size with every alias expanded is computed
    on the node graph (memoised, so the check itself never expands anything).
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_YAML_ALIASES:
                event = self.peek_event()
                raise _YamlLimit(
                    f"more than {MAX_YAML_ALIASES:,} aliases (line {event.start_mark.line + 1})",
                    "write the document out without so many `*alias` references",
                )
        return super().compose_node(parent, index)

    def compose_document(self) -> Any:
        node = super().compose_document()
        _check_nodes(node)
        return node


def _check_nodes(root: Any) -> None:
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, path: str) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise _YamlLimit(
                f"a recursive alias at {path or 'the top'} (line {node.start_mark.line + 1})",
                "an anchor cannot contain an alias to itself",
            )
        active.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                if (
                    isinstance(key_node, yaml.ScalarNode)
                    and key_node.tag != "tag:yaml.org,2002:merge"
                ):
                    name = key_node.value
                    if name in seen:
                        first = seen[name].start_mark.line + 1
                        second = key_node.start_mark.line + 1
                        what = {"steps": "step", "sources": "source"}.get(path)
                        where = f"{path}.{name}" if path else name
                        head = (
                            f"{what} '{name}' is defined twice"
                            if what
                            else (f"duplicate key '{name}' at {where}")
                        )
                        raise _YamlLimit(
                            f"{head}: line {first} and line {second} (the second would "
                            "silently replace the first)",
                            "give each step/source/key a unique name, or remove one of them",
                        )
                    seen[name] = key_node
                child = f"{path}.{key_node.value}" if path else str(key_node.value)
                total += size(key_node, child) + size(value_node, child)
                if total > MAX_YAML_NODES:
                    break
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                total += size(item, f"{path}[{i}]")
                if total > MAX_YAML_NODES:
                    break
        active.discard(key)
        sizes[key] = total
        if total > MAX_YAML_NODES:
            raise _YamlLimit(
                f"the document expands to more than {MAX_YAML_NODES:,} nodes once its aliases "
                f"are expanded (at {path or 'the top'}, line {node.start_mark.line + 1}): refused "
                "as a likely alias bomb",
                "write the document out without nested `*alias` references",
            )
        return total

    if root is not None:
        size(root, "")


def safe_load_yaml(text: str, *, file: str) -> Any:
    """yaml.safe_load with duplicate-key and alias-bomb checks; problems become SpecError."""
    try:
        return yaml.load(text, Loader=SpecLoader)  # noqa: S506 - SpecLoader is a SafeLoader
    except _YamlLimit as exc:
        raise SpecError(exc.message, file=file, fix=exc.fix) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise SpecError(f"not valid YAML{where}: {exc}", file=file) from None
    except RecursionError:
        raise SpecError(
            "the YAML document nests too deeply", file=file, fix="flatten the document"
        ) from None
