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
        return number(text.replace("_", ""))
    if _DATE.match(text):
        year, month, day = (int(part) for part in text.split("-"))
        try:
            return dt.date(year, month, day)
        except ValueError:
            return text  # no such day (2026-02-31): the field's check says so, with its line
    if _DATETIME.match(text) and _DATE.match(text[:10]):
        try:
            return dt.date.fromisoformat(text[:10])
        except ValueError:
            return text
    return text


def number(text: str) -> Decimal:
    """A written number as a Decimal: as Python's float reads and writes it back (0.80 is
    0.8) when that is the same number, else exactly as written (digits a float would lose,
    and 1e400, stay exact rather than becoming infinite)."""
    exact = Decimal(text)
    try:
        short = Decimal(str(float(text)))
    except OverflowError:
        return exact
    return short if short == exact else exact


# The most values a document may hold once its aliases are expanded: aliases repeating
# small parts (a readmission rule used twice) are fine; a few lines that expand to
# billions of values (a "billion laughs") are refused before they are expanded.
MOST_VALUES = 100_000


def _sizes(node: yaml.Node, sizes: dict[int, int]) -> int:
    """The number of values `node` expands to, each shared (aliased) node counted once
    per use but measured once."""
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # an alias of an enclosing node (a recursive document) counts once
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_sizes(k, sizes) + _sizes(v, sizes) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_sizes(item, sizes) for item in node.value)
    else:
        size = 1
    sizes[id(node)] = size
    return size


def _check_expansion(root: yaml.Node, name: str) -> None:
    """Refuse a document whose aliases expand it beyond MOST_VALUES, naming the line of the
    innermost key whose value alone is past the bound."""
    sizes: dict[int, int] = {}
    if _sizes(root, sizes) <= MOST_VALUES:
        return
    line, node, seen = 1, root, set()
    while id(node) not in seen:
        seen.add(id(node))
        children = node.value if isinstance(node, yaml.MappingNode) else [(None, v) for v in node.value] if isinstance(node, yaml.SequenceNode) else []
        big = [(k, v) for k, v in children if sizes.get(id(v), 0) > MOST_VALUES]
        if not big:
            break
        key, node = big[0]
        line = (key or node).start_mark.line + 1
    raise ProblemsError([Problem(name, f"YAML aliases expand this value to more than {MOST_VALUES:,} values", line=line,
                                 expected="the contract written out, or aliases (*name) that repeat small parts")])


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
    """Load one YAML file; bytes that are not UTF-8 and syntax errors become located Problems."""
    name = source or str(path)
    return parse_yaml(utf8_text(path.read_bytes(), name), name)


def utf8_text(data: bytes, name: str) -> str:
    """`data` decoded as UTF-8; a byte that is not (a Latin-1 é, a binary file) is a Problem
    naming its line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        raise ProblemsError([Problem(name, f"byte 0x{byte} is not UTF-8 text", line=line,
                                     expected="UTF-8 text (save the file as UTF-8)")]) from None


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
    if root is not None:
        _check_expansion(root, name)
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
