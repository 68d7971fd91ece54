"""Double payment: one payer paying twice for one activity row through two contracts is an
error at `check` and makes `pay` refuse, storing nothing; a prime's sub-contract pricing the
same rows (a different payer), two components of one contract, and consecutive terms are not
double payment."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

os.environ["COLUMNS"] = "250"  # wide enough that rich does not wrap the lines we look for

from carecontracts.cli import app  # noqa: E402
from carecontracts.engine.agreements import agreements_of  # noqa: E402
from carecontracts.engine.backend import Engine  # noqa: E402
from carecontracts.engine.double_payment import EXPECTED, double_payment_problems, double_payments  # noqa: E402
from carecontracts.engine.measure import fine_tallies  # noqa: E402
from tests.helpers import YEAR, activity, contract, repeat  # noqa: E402

runner = CliRunner()

ACUTE = """\
id: ACUTE-2025
commissioner: ICB-A
provider: ACUTE
term: {start: 2025-04-01, end: 2026-03-31}
services:
  elective: {pod: [EL]}
components:
  - {id: tariff, kind: activity, prices: national}
"""

# A second contract with the same provider and commissioner that also covers elective spells.
ORTHO = """\
id: ORTHO-2025
commissioner: ICB-A
provider: ACUTE
term: {start: 2025-04-01, end: 2026-03-31}
services:
  ortho: {service: [ortho]}
components:
  - {id: cases, kind: activity, prices: national}
"""

ACTIVITY = """\
activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity
1,p1,ACUTE,ICB-A,ortho,HB12C,EL,2025-05-02,2025-05-04,1
2,p2,ACUTE,ICB-A,ortho,HB12C,EL,2025-06-10,2025-06-12,1
3,p3,ACUTE,ICB-A,ortho,FZ22Z,NEL,2025-07-20,2025-07-20,1
4,p4,ACUTE,ICB-A,cardio,HB12C,EL,2025-11-01,2025-11-03,1
5,p5,ACUTE,ICB-A,ortho,HB12C,EL,2025-11-10,2025-11-12,1
"""

PRICES = """\
currency,unit_price,valid_from,valid_to
HB12C,6000.00,2025-04-01,2026-03-31
FZ22Z,800.00,2025-04-01,2026-03-31
"""


def invoke(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def problems_text(output: str) -> str:
    """The problems table's cells read back as text, each column's wrapped lines joined:
    where, field, problem and expected of every problem, in that order."""
    rows = [line.split("│")[1:-1] for line in output.splitlines() if line.startswith("│")]
    columns = [" ".join(" ".join(cell.split()) for cell in column if cell.strip()) for column in zip(*rows)]
    return " | ".join(columns)


def make_workspace(root: Path, contracts: dict[str, str], rows: str = ACTIVITY) -> Path:
    """A workspace with the given contract files, one activity file and the national prices."""
    (root / "contracts").mkdir(parents=True)
    (root / "data" / "activity").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "carecontracts.toml").write_text('name = "Double"\nfinancial_year = "2025-26"\n')
    for name, text in contracts.items():
        (root / "contracts" / name).write_text(text)
    (root / "data" / "activity" / "act.csv").write_text(rows)
    (root / "prices" / "national.csv").write_text(PRICES)
    return root


def statements(root: Path) -> list[tuple] | None:
    """The stored statement lines, or None if no payment run has stored any."""
    with duckdb.connect(str(root / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "statements" not in tables:
            return None
        return con.execute("SELECT contract, component, month, amount FROM statements ORDER BY ALL").fetchall()


def test_two_contracts_paying_for_the_same_rows_are_refused_by_check_and_pay(tmp_path: Path) -> None:
    """Ortho elective spells (rows 1, 2 and 5) are in both ACUTE-2025 and ORTHO-2025, each paid
    by ICB-A: `check` names both contracts, the payer, the count and the rows' lines; `pay`
    exits 2 and leaves the statements of the last good run as they were."""
    root = make_workspace(tmp_path / "ws", {"acute.yaml": ACUTE})
    assert invoke("load", "-w", root).exit_code == 0
    first = invoke("pay", "year", "-w", root)
    assert first.exit_code == 0, first.output
    before = statements(root)
    assert before  # the good run stored its lines

    (root / "contracts" / "ortho.yaml").write_text(ORTHO)
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 2, checked.output
    text = problems_text(checked.output)
    assert text.startswith("contracts/acute.yaml:5 | services |")  # the first contract's services
    assert "ICB-A would pay twice for 3 activity rows in 2025-26" in text
    assert "contract ACUTE-2025 (contracts/acute.yaml:5)" in text and "contract ORTHO-2025 (contracts/ortho.yaml:5)" in text
    assert "1 (data/activity/act.csv line 2), 2 (data/activity/act.csv line 3), 5 (data/activity/act.csv line 6)" in text
    assert "narrow one contract's services" in text

    paid = invoke("pay", "2025-11", "-w", root)
    assert paid.exit_code == 2, paid.output
    assert "ICB-A would pay twice for 3 activity rows" in problems_text(paid.output)
    assert statements(root) == before  # nothing stored


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def test_pay_refuses_before_storing_anything(tmp_path: Path, backend: str) -> None:
    """With double payment from the first run, no statements table is ever written; Spark
    reads the same rows from its Parquet copy of the warehouse and says the same."""
    root = make_workspace(tmp_path / "ws", {"acute.yaml": ACUTE, "ortho.yaml": ORTHO})
    assert invoke("load", "-w", root).exit_code == 0
    paid = invoke("pay", "year", "-w", root, "--backend", backend)
    assert paid.exit_code == 2
    text = problems_text(paid.output)
    assert "ICB-A would pay twice for 3 activity rows in 2025-26" in text
    assert "1 (data/activity/act.csv line 2), 2 (data/activity/act.csv line 3), 5 (data/activity/act.csv line 6)" in text
    assert statements(root) is None


PRIME = """\
id: MSK-2025
commissioner: ICB-A
provider: PRIME
term: {start: 2025-04-01, end: 2026-03-31}
services:
  msk: {service: [ortho]}
components:
  - {id: cases, kind: activity, prices: national}
subcontracts:
  - id: MSK-ORTHO
    provider: ACUTE
    services: {hips: {service: [ortho], pod: [EL]}}
    components:
      - {id: ortho, kind: activity, prices: national, mff: 1.05}
"""


def test_a_prime_and_its_subcontract_pricing_the_same_rows_is_allowed(tmp_path: Path) -> None:
    """ICB-A pays PRIME per case and PRIME pays ACUTE per case for the same ortho spells:
    two payers, so a flow between parties, and both are paid."""
    root = make_workspace(tmp_path / "ws", {"msk.yaml": PRIME})
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 0, checked.output
    assert "No activity row in 2025-26 is paid twice by one payer (5 rows checked)" in checked.output
    assert invoke("load", "-w", root).exit_code == 0
    paid = invoke("pay", "year", "-w", root)
    assert paid.exit_code == 0, paid.output
    paid_for = {(contract, component) for contract, component, _, _ in statements(root) or []}
    assert {("MSK-2025", "cases"), ("MSK-ORTHO", "ortho")} <= paid_for


def test_two_subcontracts_of_one_prime_paying_for_the_same_rows_are_double_payment(engine: Engine) -> None:
    """Two sub-contracts of one prime are both paid by the prime: the same payer twice."""
    prime = contract(PRIME.replace("subcontracts:\n", """subcontracts:
  - id: MSK-SPARE
    provider: ACUTE
    services: {spare: {pod: [EL]}}
    components:
      - {id: spare, kind: activity, prices: national}
"""))
    rows = engine.put(activity(repeat(4, provider="ACUTE", commissioner="ICB-A", service="ortho", pod="EL")))
    agreements = agreements_of([prime])
    (found,) = double_payments(engine, fine_tallies(rows, agreements), agreements, YEAR.months, rows)
    assert (found.first.id, found.second.id, found.payer, found.rows) == ("MSK-ORTHO", "MSK-SPARE", "PRIME", 4)
    (problem,) = double_payment_problems([found], YEAR.label)
    assert "sub-contract MSK-ORTHO of MSK-2025" in problem.message and "sub-contract MSK-SPARE of MSK-2025" in problem.message
    assert problem.field == "subcontracts[1].services" and problem.expected == EXPECTED


TOPUP = """\
id: ACUTE-2025
commissioner: ICB-A
provider: ACUTE
term: {start: 2025-04-01, end: 2026-03-31}
services:
  elective: {pod: [EL]}
components:
  - {id: tariff, kind: activity, prices: national}
  - {id: best-practice, kind: best_practice_topup, amount: 1335}
"""


def test_two_components_of_one_contract_on_the_same_rows_are_allowed(tmp_path: Path) -> None:
    """Cost per case and a best-practice top-up on the same spells, in one contract."""
    rows = ACTIVITY.replace("activity_id,", "compliant,activity_id,").replace("\n1,", "\n1,1,").replace("\n2,", "\n1,2,")
    rows = "\n".join(line if line.count(",") == 10 else "0," + line for line in rows.splitlines()) + "\n"
    root = make_workspace(tmp_path / "ws", {"acute.yaml": TOPUP}, rows)
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 0, checked.output
    assert invoke("load", "-w", root).exit_code == 0
    paid = invoke("pay", "year", "-w", root)
    assert paid.exit_code == 0, paid.output
    paid_for = {component for _, component, _, _ in statements(root) or []}
    assert paid_for == {"tariff", "best-practice"}


def consecutive(first_end: str, second_start: str) -> dict[str, str]:
    """ACUTE-2025 to `first_end`, then ACUTE-2025B from `second_start`, on the same terms."""
    first = ACUTE.replace("end: 2026-03-31", f"end: {first_end}")
    second = ACUTE.replace("ACUTE-2025", "ACUTE-2025B").replace("start: 2025-04-01", f"start: {second_start}")
    return {"acute.yaml": first, "acute-b.yaml": second}


def test_consecutive_terms_do_not_overlap(tmp_path: Path) -> None:
    """One contract to September, its successor from October: each row is paid once."""
    root = make_workspace(tmp_path / "ws", consecutive("2025-09-30", "2025-10-01"))
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 0, checked.output
    assert invoke("load", "-w", root).exit_code == 0
    paid = invoke("pay", "year", "-w", root)
    assert paid.exit_code == 0, paid.output
    by_contract = {(contract, month.month) for contract, _, month, _ in statements(root) or []}
    assert by_contract == {("ACUTE-2025", 5), ("ACUTE-2025", 6), ("ACUTE-2025B", 11)}


def test_terms_sharing_a_month_pay_that_month_twice(tmp_path: Path) -> None:
    """Activity counts in the month it ended, so terms that both reach into November both
    pay November's elective spells (rows 4 and 5), and only those."""
    root = make_workspace(tmp_path / "ws", consecutive("2025-11-15", "2025-11-16"))
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 2, checked.output
    text = problems_text(checked.output)
    assert "ICB-A would pay twice for 2 activity rows in 2025-26" in text
    assert "contract ACUTE-2025 (contracts/acute.yaml:5)" in text and "contract ACUTE-2025B (contracts/acute-b.yaml:5)" in text
    assert "4 (data/activity/act.csv line 5), 5 (data/activity/act.csv line 6)" in text


def test_only_the_shared_commissioners_rows_are_paid_twice(engine: Engine) -> None:
    """A contract with two commissioners and one with just the second: only the second
    commissioner's rows are paid twice, by it."""
    shared = contract("""
    id: SHARED
    commissioners: [{id: ICB-A, share: 0.5, coordinating: true}, {id: ICB-B, share: 0.5}]
    provider: ACUTE
    term: {start: 2025-04-01, end: 2026-03-31}
    components: [{id: tariff, kind: activity, prices: national}]
    """)
    own = contract("""
    id: OWN
    commissioner: ICB-B
    provider: ACUTE
    term: {start: 2025-04-01, end: 2026-03-31}
    components: [{id: tariff, kind: activity, prices: national}]
    """)
    rows = engine.put(activity(repeat(3, provider="ACUTE", commissioner="ICB-A", prefix="a") + repeat(2, provider="ACUTE", commissioner="ICB-B", prefix="b")))
    agreements = agreements_of([shared, own])
    found = double_payments(engine, fine_tallies(rows, agreements), agreements, YEAR.months, rows)
    assert [(f.first.id, f.second.id, f.payer, f.rows, [s.activity_id for s in f.sample]) for f in found] == [("OWN", "SHARED", "ICB-B", 2, ["b0", "b1"])]


def test_rows_outside_the_year_are_not_counted(engine: Engine) -> None:
    """Only the financial year is paid, so only its rows are checked."""
    a = contract("id: A\ncommissioner: ICB\nprovider: PROV\nterm: {start: 2024-04-01, end: 2026-03-31}\ncomponents: [{id: t, kind: activity, prices: national}]\n")
    b = contract("id: B\ncommissioner: ICB\nprovider: PROV\nterm: {start: 2024-04-01, end: 2026-03-31}\ncomponents: [{id: t, kind: activity, prices: national}]\n")
    rows = engine.put(activity(repeat(2, end_date=dt.date(2025, 3, 20), prefix="old") + repeat(1, end_date=dt.date(2025, 4, 20))))
    agreements = agreements_of([a, b])
    (found,) = double_payments(engine, fine_tallies(rows, agreements), agreements, YEAR.months, rows)
    assert found.rows == 1 and [s.activity_id for s in found.sample] == ["r0"]


@pytest.mark.parametrize("rows", [1000])
def test_the_example_workspace_has_no_double_payment(tmp_path: Path, rows: int) -> None:
    """The example, as `init` writes it, checks clean and pays."""
    root = tmp_path / "example"
    made = invoke("init", root, "--rows", rows)
    assert made.exit_code == 0, made.output
    checked = invoke("check", "-w", root)
    assert checked.exit_code == 0, checked.output
    assert "No activity row in 2025-26 is paid twice by one payer" in checked.output
    assert invoke("load", "-w", root).exit_code == 0
    paid = invoke("pay", "2025-11", "-w", root)
    assert paid.exit_code == 0, paid.output
