"""A small prices workbook in the NHS Payment Scheme's published layout, with made-up prices
for a handful of HRGs: illustrative only, not the published prices."""

from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from pathlib import Path
from typing import Any, Sequence

from openpyxl import Workbook

from carecontracts.data.books import AE_COLUMNS, APC_COLUMNS, OUTPATIENT_COLUMNS

ILLUSTRATIVE = "Illustrative prices made up for the carecontracts example: NOT the published NHS Payment Scheme prices."
NPP = "No national price"

# HRG code, name, OP procedure, combined DC/EL, day case, elective, EL trim, non-elective,
# NEL trim, per day long stay, short stay applies?, %, reduced short stay tariff.
APC_ROWS: list[tuple[Any, ...]] = [
    ("HN12F", "Very Major Hip Procedures for Non-Trauma, Category 1, without CC", None, None, None, 6250, 8, 7120, 12, 310, "No", None, None),
    ("HN81D", "Very Major Knee Procedures for Non-Trauma, Category 1, with CC Score 0-1", None, None, None, 6020, 6, 6880, 11, 305, "No", None, None),
    ("FD05B", "Abdominal Pain without Interventions", 140, 520, None, None, 3, 910, 4, 290, "Yes", 0.3, None),
    ("EB03E", "Heart Failure or Shock, with CC Score 0-3", None, 1640, None, None, 5, 2480, 9, 275, "Yes", 0.25, 620),
    ("LB40F", "Stone Removal with CC Score 0-1", 240, None, 1210, 1990, 4, 2210, 5, 300, "No", None, None),
    ("WH50B", "Procedure not yet priced nationally (illustrative)", None, NPP, None, None, None, NPP, None, None, "No", None, None),
]
OUTPATIENT_ROWS: list[tuple[Any, ...]] = [
    ("110", "Trauma and Orthopaedics", 165, 205, 92, 118),
    ("300", "General Internal Medicine", 230, 270, 120, 150),
]
AE_ROWS: list[tuple[Any, ...]] = [
    ("VB07Z", "Emergency Medicine, Category 2 Investigation with Category 2 Treatment", 185, 80),
    ("VB11Z", "Emergency Medicine, No Investigation with No Significant Treatment", 95, 45),
]


def write_sheet(workbook: Workbook, title: str, headings: Sequence[str], rows: Sequence[Sequence[Any]], percent_column: int | None = None) -> None:
    """A sheet as published: a title row, a note, a blank row, then the header and the prices."""
    sheet = workbook.create_sheet(title)
    sheet.append([title])
    sheet.append([ILLUSTRATIVE])
    sheet.append([])
    sheet.append(list(headings))
    for row in rows:
        sheet.append(list(row))
        if percent_column is not None and row[percent_column] is not None:
            sheet.cell(row=sheet.max_row, column=percent_column + 1).number_format = "0%"


def write_prices_workbook(path: Path, apc: Sequence[Sequence[Any]] = APC_ROWS, outpatients: Sequence[Sequence[Any]] | None = OUTPATIENT_ROWS,
                          emergency: Sequence[Sequence[Any]] | None = AE_ROWS) -> Path:
    """Write a prices workbook in the published layout (by default the illustrative one)."""
    workbook = Workbook()
    notes = workbook.active
    assert notes is not None
    notes.title = "Read me"
    notes.append([ILLUSTRATIVE])
    notes.append(["Layout as the NHS Payment Scheme prices workbook: sheets 1 APC & OPROC, 2 OP attendances, 3 A&E."])
    write_sheet(workbook, "1 APC & OPROC", list(APC_COLUMNS), apc, percent_column=11)
    if outpatients is not None:
        write_sheet(workbook, "2 OP attendances", list(OUTPATIENT_COLUMNS), outpatients)
    if emergency is not None:
        write_sheet(workbook, "3 A&E", list(AE_COLUMNS), emergency)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.properties.creator = "carecontracts example"
    workbook.properties.created = workbook.properties.modified = FIXED_TIME
    buffer = io.BytesIO()
    workbook.save(buffer)
    path.write_bytes(_fixed_times(buffer.getvalue()))
    return path


FIXED_TIME = dt.datetime(2025, 4, 1)


def _fixed_times(data: bytes) -> bytes:
    """The workbook's zip with every member dated alike, so the same prices give the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item.filename)
            if item.filename == "docProps/core.xml":
                content = _fixed_core(content)
            target.writestr(zipfile.ZipInfo(item.filename, date_time=FIXED_TIME.timetuple()[:6]), content, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _fixed_core(content: bytes) -> bytes:
    """docProps/core.xml with its modified time as created (openpyxl stamps the time it saves)."""
    return re.sub(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rb"\g<1>2025-04-01T00:00:00Z\g<2>", content)
