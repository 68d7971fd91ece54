"""A blank workspace to start from: settings with every option explained, empty folders for
contracts and data with the columns each file takes, and a worked template of each contract
kind (copied into contracts/ and edited, it is a contract)."""

from __future__ import annotations

import shutil
from pathlib import Path

from carecontracts.examples.prices_workbook import write_prices_workbook

TEMPLATES = Path(__file__).parent / "templates"
SPELL_BOOK = "nps-2025-26-illustrative"  # made-up prices in the published layout, for the spell template
SETTINGS = '''# carecontracts workspace settings. Every setting is optional; an unknown one is an error.
name = "{name}"
financial_year = "2025-26"        # the year `pay year` means: 2025-26, 2025/26 or 2025
financial_year_start_month = 4    # April
currency = "GBP"
backend = "duckdb"                # or "spark" for a book too big for one machine
# records = "postgresql+psycopg://user@host/database"   # the records store on a server; SQLite in .carecontracts/ by default

# [budgets]                       # each commissioner's budget for the year's contracts, in pounds
# ICB-NCL = 495_000_000

# [contract_management]           # GC9 and SC29 time limits, in operational days (see the README)
# cpn_meeting_days = 10
# rap_agreement_days = 5
# withhold_max_percent = 2
# retain_after_months = 3
'''
HEADERS = {
    "data/activity/activity.csv": "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity",
    "data/plans/plans.csv": "contract,service,month,planned_quantity,planned_value",
    "data/population/population.csv": "commissioner,month,band,persons",
    "data/outcomes/outcomes.csv": "patient_id,episode_id,instrument,timepoint,date,score",
}
START = '''# Starting a workspace

1. Copy a template from templates/ into contracts/ (one contract per file) and edit it: the
   ids, the commissioner and provider, the term and the terms. Each template is a worked
   example; its comments say what it pays and which fields its component takes.
2. Put price lists in prices/ (currency,unit_price,valid_from,valid_to; one file per list, named
   as the contracts name it) and activity in data/activity/ (the header in activity.csv is the
   columns it takes). Dates may be 2025-11-30 or 30/11/2025; amounts may be written £1,234.56.
   prices/nps-2025-26-illustrative.xlsx is a prices workbook in the NHS Payment Scheme's layout
   with made-up prices, for the spell template: replace it with the published workbook.
3. `carecontracts check -w .` names anything wrong by file, line and field;
   `carecontracts load -w .` then `carecontracts pay year -w .` price the year.
'''


def write_blank(root: Path) -> list[str]:
    """Write the blank workspace at `root` (new or empty); the files written, relative to it."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} already exists and is not an empty folder; choose a new or empty folder")
    written = []
    root.mkdir(parents=True, exist_ok=True)
    (root / "carecontracts.toml").write_text(SETTINGS.format(name=root.resolve().name), encoding="utf-8")
    (root / "START HERE.md").write_text(START, encoding="utf-8")
    written += ["carecontracts.toml", "START HERE.md"]
    for folder in ("contracts", "prices"):
        (root / folder).mkdir()
    written.append(write_prices_workbook(root / "prices" / f"{SPELL_BOOK}.xlsx").relative_to(root).as_posix())
    for relative, header in HEADERS.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + "\n", encoding="utf-8")
        written.append(relative)
    (root / "templates").mkdir()
    for template in sorted(TEMPLATES.glob("*.yaml")):
        shutil.copyfile(template, root / "templates" / template.name)
        written.append(f"templates/{template.name}")
    return written
