"""YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from carecontracts.problems import Problem, ProblemsError

Path_ = tuple[str | int, ...]
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser where the wheel has it


# Plain scalars resolved as YAML 1.2's core schema does (as a contract author reads them:
# `no` and `on` are text, not booleans, unlike YAML 1.1).
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"^[-+]?[0-9][0-9_]*$")
_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*\.[0-9_]*|\.[0-9_]+|[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+)$")
_DATE = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}$")
_DATETIME = re.compile(r"^[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?$")


def _scalar(node: yaml.ScalarNode) -> Any:
    """A scalar's value: quoted text stays text; a plain scalar is resolved by the core
    schema. Decimals keep their written digits (1.0461 stays 1.0461)."""
    text = node.value
    if node.style:  # quoted or block text ('' or None is plain, as libyaml and PyYAML say it)
        return text
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT.match(text):
        return int(text.replace("_", ""))
    if _FLOAT.match(text):
        return Decimal(str(float(text.replace("_", ""))))
    if _DATE.match(text):
        year, month, day = (int(part) for part in text.split("-"))
        return dt.date(year, month, day)
    if _DATETIME.match(text):
        return dt.date.fromisoformat(text[:10]) if _DATE.match(text[:10]) else text
    return text


def _plain(node: yaml.Node, path: Path_, lines: dict[Path_, int], name: str) -> Any:
    """Convert composed YAML nodes to plain Python, recording 1-based lines by path; a key
    given twice in a mapping is a located error."""
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else key_node.value
            key = str(key)
            if key in out:
                raise ProblemsError([Problem(name, f"YAML syntax error: found duplicate key '{key}'", line=key_node.start_mark.line + 1)])
            lines[path + (key,)] = key_node.start_mark.line + 1
            out[key] = _plain(value_node, path + (key,), lines, name)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            items.append(_plain(item, path + (index,), lines, name))
        return items
    return _scalar(node)


class LocatedDocument:
    """A YAML document as plain data plus a map from field path to line."""

    def __init__(self, source: str, data: Any, lines: dict[Path_, int]):
        self.source = source
        self.data = data
        self.lines = lines

    def line_of(self, path: Path_) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for cut in range(len(path), 0, -1):
            if path[:cut] in self.lines:
                return self.lines[path[:cut]]
        return 1


def load_yaml(path: Path, source: str | None = None) -> LocatedDocument:
    """Load one YAML file; syntax errors become a located Problem."""
    return parse_yaml(path.read_text(encoding="utf-8"), source or str(path))


def parse_yaml(text: str, name: str) -> LocatedDocument:
    """Parse YAML text from `name` with libyaml; syntax errors become a located Problem."""
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ProblemsError([Problem(name, f"YAML syntax error: {error.problem}", line=line)]) from None
    except yaml.YAMLError as error:
        raise ProblemsError([Problem(name, f"YAML syntax error: {error}")]) from None
    lines: dict[Path_, int] = {}
    return LocatedDocument(name, _plain(root, (), lines, name) if root is not None else None, lines)


def format_path(path: Path_) -> str:
    """('components', 1, 'pot') → `components[1].pot`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
