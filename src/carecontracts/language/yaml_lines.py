"""YAML loading that remembers the line of every key and list item."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from carecontracts.problems import Problem, ProblemsError

Path_ = tuple[str | int, ...]


def _plain(node: Any, path: Path_, lines: dict[Path_, int]) -> Any:
    """Convert ruamel nodes to plain Python, recording 1-based lines by path.

    Floats become Decimal through their shortest text so 1.0461 stays 1.0461.
    """
    if isinstance(node, CommentedMap):
        out: dict[str, Any] = {}
        for key, value in node.items():
            key_line, _ = node.lc.key(key)
            lines[path + (str(key),)] = key_line + 1
            out[str(key)] = _plain(value, path + (str(key),), lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for index, value in enumerate(node):
            item_line, _ = node.lc.item(index)
            lines[path + (index,)] = item_line + 1
            items.append(_plain(value, path + (index,), lines))
        return items
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, float):
        return Decimal(str(node))
    if isinstance(node, int):
        return int(node)
    if isinstance(node, (dt.date, dt.datetime)):
        return node if not isinstance(node, dt.datetime) else node.date()
    return str(node)


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
    """Parse YAML text from `name`; syntax errors become a located Problem."""
    yaml = YAML(typ="rt")
    try:
        raw = yaml.load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ProblemsError(
            [Problem(name, f"YAML syntax error: {error.problem}", line=line)]
        ) from None
    lines: dict[Path_, int] = {}
    return LocatedDocument(name, _plain(raw, (), lines), lines)


def format_path(path: Path_) -> str:
    """('components', 1, 'pot') → `components[1].pot`."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text
