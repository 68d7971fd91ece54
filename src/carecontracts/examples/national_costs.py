"""The slice of NHS England's National Cost Collection 2023/24 that the example workspace uses.

The shipped file `data/national_costs_2023_24.csv` is rebuilt from the published file with
`python -m carecontracts.examples.national_costs <published.csv>`; the example generator only
ever reads the shipped slice (see `data/SOURCE.md`).
"""

from __future__ import annotations

import csv
import sys
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

SHIPPED = "national_costs_2023_24.csv"
COLUMNS = ("service_code", "currency", "description", "activity", "unit_cost")

ELECTIVE = ("Elective Inpatients", "Daycase")
NON_ELECTIVE = ("Non-Elective Inpatient - Short Stay", "Non-Elective Inpatient - Long Stay")
OUTPATIENT_PROCEDURES = "Outpatient Procedures"
CONSULTANT_LED = "Consultant Led"
EMERGENCY_CARE = "Emergency Care"
COMMUNITY = "Community Health Service"
MENTAL_HEALTH = ("Mental Health Care Contact", "Mental Health Provider Spell")

OUTPATIENT_CURRENCIES = ("WF01A", "WF01B", "WF01C", "WF01D", "WF02A", "WF02B")
READMISSION_PREFIXES = ("WH07", "DZ09")  # complications of procedures; pulmonary embolus
ORTHOPAEDIC_AND_EYE_PREFIXES = ("HN", "BZ")


@dataclass(frozen=True)
class CostRow:
    """One national average unit cost: a currency in a setting (service code)."""

    service_code: str
    currency: str
    description: str
    activity: int
    unit_cost: float


def _read_published(source: Path) -> list[CostRow]:
    """Rows of the published file, with the currency code's trailing spaces stripped."""
    rows: list[CostRow] = []
    with source.open(encoding="utf-8-sig", newline="") as handle:
        for record in csv.DictReader(handle):
            rows.append(
                CostRow(
                    service_code=record["Service Code"].strip(),
                    currency=record["Dept or Currency Code"].strip(),
                    description=record["Dept or Currency Desc"].strip(),
                    activity=int(float(record["Activity"])),
                    unit_cost=float(record["Unit cost"]),
                )
            )
    return rows


def _top(rows: list[CostRow], settings: tuple[str, ...], count: int, keep: Callable[[str], bool]) -> list[str]:
    """The `count` currencies with most national activity across `settings` that `keep` accepts."""
    activity: dict[str, int] = defaultdict(int)
    for row in rows:
        if row.service_code in settings and keep(row.currency):
            activity[row.currency] += row.activity
    ranked = sorted(activity, key=lambda code: (-activity[code], code))
    return ranked[:count]


def select(rows: list[CostRow]) -> list[CostRow]:
    """The currencies the example needs, chosen so that no currency has two prices.

    Elective and non-elective HRGs are disjoint sets (an HRG is priced for the setting it is
    drawn in), maternity HRGs are non-elective only, outpatient procedures exclude both.
    """
    elective = set(_top(rows, ELECTIVE, 150, lambda c: not c.startswith("NZ")))
    elective |= set(_top(rows, ELECTIVE, 40, lambda c: c.startswith(ORTHOPAEDIC_AND_EYE_PREFIXES)))
    maternity = set(_top(rows, NON_ELECTIVE, 12, lambda c: c.startswith("NZ")))
    non_elective = set(_top(rows, NON_ELECTIVE, 150, lambda c: c not in elective and not c.startswith("NZ")))
    non_elective |= set(_top(rows, NON_ELECTIVE, 20, lambda c: c not in elective and c.startswith(READMISSION_PREFIXES)))
    admitted = elective | maternity | non_elective
    procedures = set(_top(rows, (OUTPATIENT_PROCEDURES,), 30, lambda c: c not in admitted))
    community = set(_top(rows, (COMMUNITY,), 20, lambda c: c != "CHS00"))
    wanted = {
        **{s: elective for s in ELECTIVE},
        **{s: non_elective | maternity for s in NON_ELECTIVE},
        OUTPATIENT_PROCEDURES: procedures,
        CONSULTANT_LED: set(OUTPATIENT_CURRENCIES),
        EMERGENCY_CARE: {r.currency for r in rows if r.service_code == EMERGENCY_CARE},
        COMMUNITY: community,
        **{s: {r.currency for r in rows if r.service_code == s} for s in MENTAL_HEALTH},
    }
    chosen = [r for r in rows if r.currency in wanted.get(r.service_code, set())]
    return sorted(chosen, key=lambda r: (r.service_code, r.currency))


def write_subset(source: Path, target: Path) -> int:
    """Write the shipped slice from the published file; returns the number of rows."""
    chosen = select(_read_published(source))
    with target.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in chosen:
            writer.writerow([row.service_code, row.currency, row.description, row.activity, f"{row.unit_cost:.4f}"])
    return len(chosen)


def shipped_costs() -> list[CostRow]:
    """The shipped slice, read from the package's data folder."""
    text = resources.files("carecontracts.examples").joinpath("data", SHIPPED).read_text(encoding="utf-8")
    reader = csv.DictReader(text.splitlines())
    return [
        CostRow(r["service_code"], r["currency"], r["description"], int(r["activity"]), float(r["unit_cost"]))
        for r in reader
    ]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m carecontracts.examples.national_costs <nhs_national_cost_collection_2023_24.csv>")
    written = write_subset(Path(sys.argv[1]), Path(__file__).parent / "data" / SHIPPED)
    print(f"wrote {written} rows to data/{SHIPPED}")
