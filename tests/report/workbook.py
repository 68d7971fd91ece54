"""Read a workbook as a person's spreadsheet would: evaluate its SUM, SUMIF and SUBTOTAL
formulas (and a difference of two cells) over the cells they name, in exact decimals
(written independently of the code that writes them)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from openpyxl.utils import column_index_from_string
from openpyxl.workbook.workbook import Workbook

REFERENCE = re.compile(r"(?:'((?:[^']|'')+)'!|([A-Za-z0-9_]+)!)?\$?([A-Z]+)\$?(\d+)(?::\$?([A-Z]+)\$?(\d+))?")
CALL = re.compile(r"^=(SUM|SUMIF|SUBTOTAL)\((.*)\)$")
DIFFERENCE = re.compile(r"^=(\$?[A-Z]+\$?\d+)-(\$?[A-Z]+\$?\d+)$")


def number(value: Any) -> Decimal:
    """A cell's number as an exact decimal: the shortest text of the double read back, which
    is the decimal text the workbook holds (amounts have at most 15 significant digits)."""
    if value is None or value == "":
        return Decimal(0)
    if isinstance(value, (int, float)):
        return Decimal(repr(value))
    raise ValueError(f"not a number: {value!r}")


def cells(book: Workbook, sheet: str, reference: str) -> list[Any]:
    """The values in a reference (A1 or A1:B9, with or without $ and a sheet name)."""
    match = REFERENCE.fullmatch(reference.strip())
    assert match, reference
    name = (match.group(1) or "").replace("''", "'") or match.group(2) or sheet
    top, left = int(match.group(4)), column_index_from_string(match.group(3))
    bottom = int(match.group(6) or top)
    right = column_index_from_string(match.group(5) or match.group(3))
    grid = book[name].iter_rows(min_row=top, max_row=bottom, min_col=left, max_col=right, values_only=True)
    return [(name, value) for row in grid for value in row]


def arguments(text: str) -> list[str]:
    """A formula's arguments (commas inside quoted sheet names kept)."""
    parts, current, quoted = [], "", False
    for char in text:
        if char == "'":
            quoted = not quoted
        if char == "," and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
    return [*parts, current]


def evaluate(book: Workbook, sheet: str, value: Any) -> Decimal:
    """A cell's value: a number, or the formula it holds, evaluated recursively. SUBTOTAL 109
    is a SUM of the rows in view (the sheets read here hide none); SUMIF's criterion is a
    cell or a quoted text, "" matching empty cells as Excel and LibreOffice do."""
    if not (isinstance(value, str) and value.startswith("=")):
        return number(value)
    difference = DIFFERENCE.match(value)
    if difference:
        (_, left), = cells(book, sheet, difference.group(1))
        (_, right), = cells(book, sheet, difference.group(2))
        return evaluate(book, sheet, left) - evaluate(book, sheet, right)
    call = CALL.match(value)
    assert call, f"unexpected formula {value}"
    function, args = call.group(1), arguments(call.group(2))
    if function == "SUBTOTAL":
        assert args[0] == "109", f"not a sum of the rows in view: {value}"
        assert not any(d.hidden for d in book[sheet].row_dimensions.values()), "a hidden row"
        function, args = "SUM", args[1:]
    if function == "SUM":
        return sum((evaluate(book, where, v) for a in args for where, v in cells(book, sheet, a)), Decimal(0))
    names, criterion, amounts = args
    if criterion.startswith('"'):
        wanted = criterion[1:-1]
    else:
        (_, wanted), = cells(book, sheet, criterion)
    keys, values = cells(book, sheet, names), cells(book, sheet, amounts)
    assert len(keys) == len(values)
    matches = (lambda k: k in (None, "")) if wanted == "" else (lambda k: k == wanted)
    return sum((evaluate(book, where, v) for (_, k), (where, v) in zip(keys, values) if matches(k)), Decimal(0))
