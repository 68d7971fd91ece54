"""Contract management through the command line, on a contract small enough to work by hand:
COMM-2025 pays a £1,200,000 block (£100,000 a month) and £100 a visit; October has 5 visits
(£500), no other month has any. A withholding of 2% therefore takes £2,010.00 in October
(2% of £100,500) and £2,000.00 in each other month it runs."""

from __future__ import annotations

import datetime as dt
import sqlite3
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from carecontracts.cli import app
from carecontracts.cycle.notices import due, notices, operational_days_after
from carecontracts.workspace import Workspace

runner = CliRunner()
CONTRACT = """\
id: COMM-2025
provider: COMM
commissioner: ICB-A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: core, kind: block, annual: 1_200_000}
  - {id: visits, kind: activity, prices: tariff, unit: visits}
subcontracts:
  - id: COMM-2025-SUB
    provider: HELPER
    components:
      - {id: help, kind: block, annual: 12_000}
"""
HEADER = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"


def make(root: Path, settings: str = "") -> Path:
    (root / "contracts").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "data" / "activity").mkdir(parents=True)
    (root / "carecontracts.toml").write_text(f'name = "notices"\n{settings}', encoding="utf-8")
    (root / "contracts" / "comm.yaml").write_text(CONTRACT, encoding="utf-8")
    (root / "prices" / "tariff.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,100,2025-04-01,2026-03-31\n", encoding="utf-8")
    visits = [f"V{i},P{i},COMM,ICB-A,general,HRG1,EL,2025-10-1{i},2025-10-1{i},1" for i in range(1, 6)]
    (root / "data" / "activity" / "activity.csv").write_text("\n".join([HEADER, *visits]) + "\n", encoding="utf-8")
    return root


def cc(*args: object, code: int = 0) -> str:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = make(tmp_path / "ws")
    cc("load", "-w", root)
    return root


def lines(root: Path, component: str) -> dict[str, tuple[Decimal, str]]:
    """The stored statement lines of a component of COMM-2025 by month: (amount, basis)."""
    with duckdb.connect(str(root / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        found = con.execute("SELECT month, amount, basis FROM statements WHERE contract = 'COMM-2025' AND component = ? ORDER BY month",
                            [component]).fetchall()
    return {f"{m:%Y-%m}": (a, b) for m, a, b in found}


def to_withholding(root: Path) -> None:
    """CPN-0001 from its issue to a 2% withholding from October."""
    assert "Opened CPN-0001 on COMM-2025" in cc("notice", "open", "cpn", "COMM-2025", "--about", "Waiting times", "--on", "2025-09-01", "-w", root)
    cc("notice", "step", "CPN-0001", "meet", "--on", "2025-09-10", "-w", root)
    cc("notice", "step", "CPN-0001", "agree-plan", "--on", "2025-09-12", "--milestone", "Validate the list", "--due", "2025-09-30", "-w", root)
    cc("notice", "step", "CPN-0001", "miss", "--on", "2025-10-01", "-w", root)
    said = cc("notice", "step", "CPN-0001", "withhold", "--percent", "2", "--month", "2025-10", "--on", "2025-10-02", "-w", root)
    assert "CPN-0001: withholding notified on 2025-10-02. Next: remedy, exception-report." in said


def test_a_withholding_is_priced_monthly_and_repaid_when_remedied_in_time(ws: Path) -> None:
    to_withholding(ws)
    cc("pay", "year", "-w", ws)
    held = lines(ws, "CPN-0001")
    assert {m: a for m, (a, _) in held.items()} == {"2025-10": Decimal("-2010.00"), "2025-11": Decimal("-2000.00"), "2025-12": Decimal("-2000.00"),
                                                    "2026-01": Decimal("-2000.00"), "2026-02": Decimal("-2000.00"), "2026-03": Decimal("-2000.00")}
    assert "GC9 notice CPN-0001: Waiting times" in held["2025-10"][1] and "2% of core + visits" in held["2025-10"][1]
    # Not remedied, the withholding is retained three months on (the default): nothing is repaid.
    assert lines(ws, "CPN-0001.settlement") == {"2026-01": (Decimal("0.00"), "not remedied within 3 months of 2025-10: retained £12,010.00 withheld")}
    cc("close", "2025-11", "-w", ws)
    # A remedy may not be paid in a closed month; December is the first open one.
    assert "2025-11 is closed: a closed month is never restated" in cc("notice", "step", "CPN-0001", "remedy", "--month", "2025-11", "-w", ws, code=2)
    cc("notice", "step", "CPN-0001", "remedy", "--on", "2025-12-05", "-w", ws)
    assert "the stored statements are out of date: a withholding begun or remedied since" in cc("close", "2025-12", "-w", ws, code=2)
    cc("pay", "year", "-w", ws)
    # October and November stay as issued; remedied in December, within 3 months: the £4,010.00 held is repaid then.
    assert {m: a for m, (a, _) in lines(ws, "CPN-0001").items()} == {"2025-10": Decimal("-2010.00"), "2025-11": Decimal("-2000.00")}
    assert lines(ws, "CPN-0001.settlement") == {"2025-12": (Decimal("4010.00"), "remedied in 2025-12, within 3 months: repaid £4,010.00 withheld")}
    assert "notice CPN-0001 on record" in cc("explain", "COMM-2025", "CPN-0001", "2025-10", "-w", ws)
    assert "Next: nothing (remedied)." in cc("notice", "show", "CPN-0001", "-w", ws)


def test_unremedied_it_is_retained_after_an_exception_report_then_the_contract_may_be_terminated(ws: Path) -> None:
    to_withholding(ws)
    cc("notice", "step", "CPN-0001", "exception-report", "--on", "2025-12-01", "-w", ws)
    early = cc("notice", "step", "CPN-0001", "retain", "--on", "2025-12-31", "-w", ws, code=2)
    assert "sums withheld from 2025-10 may be retained only once 3 months have passed unremedied, from 2026-01-01" in early
    cc("notice", "step", "CPN-0001", "retain", "--on", "2026-01-02", "-w", ws)
    cc("notice", "step", "CPN-0001", "terminate", "--on", "2026-01-20", "-w", ws)
    assert "Next: nothing (terminated)." in cc("notice", "show", "CPN-0001", "-w", ws)
    steps = ["issue", "meet", "agree-plan", "miss", "withhold", "exception-report", "retain", "terminate"]
    with sqlite3.connect(ws / ".carecontracts" / "records.sqlite") as con:
        kinds = [k for (k,) in con.execute("SELECT kind FROM events WHERE subject = 'CPN-0001' ORDER BY sequence")]
    assert kinds == [f"notice.{s}" for s in steps]


@pytest.mark.parametrize("args, says", [
    (["open", "cpn", "COMM-2025-SUB", "--about", "x"], "COMM-2025-SUB is a sub-contract of COMM-2025: contract management is between the commissioner and the provider"),
    (["open", "warning", "COMM-2025", "--about", "x"], "'warning' is not a kind of notice"),
    (["open", "cpn", "COMM-2025", "--about", "  "], "a notice says what it is about"),
    (["open", "cpn", "NO-SUCH", "--about", "x"], "no contract NO-SUCH"),
    (["step", "CPN-0001", "withhold", "--percent", "2"], "CPN-0001 is issued: it cannot be taken now"),
    (["step", "CPN-0001", "dance"], "'dance' is not a step of a contract performance notice: it cannot be taken now"),
    (["step", "CPN-0001", "meet", "--on", "2025-08-31"], "CPN-0001's last step was on 2025-09-01: a later step cannot come before it"),
    (["step", "CPN-0001", "meet", "--on", "2999-01-01"], "2999-01-01 is in the future: a step is recorded once it has happened"),
    (["step", "CPN-0001", "meet", "--on", "2025-02-30"], "'2025-02-30' is not a day"),
    (["step", "CPN-0009", "meet"], "no notice CPN-0009"),
])
def test_a_step_that_cannot_be_taken_is_refused_and_changes_nothing(ws: Path, args: list[str], says: str) -> None:
    cc("notice", "open", "cpn", "COMM-2025", "--about", "Waiting times", "--on", "2025-09-01", "-w", ws)
    assert says in cc("notice", *args, "-w", ws, code=2)
    [notice] = notices(Workspace.open(ws))
    assert (notice.state, notice.last_on) == ("issued", dt.date(2025, 9, 1))


def test_a_plan_s_milestone_and_a_withholding_s_percent_are_checked(ws: Path) -> None:
    cc("notice", "open", "cpn", "COMM-2025", "--about", "Waiting times", "--on", "2025-09-01", "-w", ws)
    cc("notice", "step", "CPN-0001", "meet", "--on", "2025-09-10", "-w", ws)
    assert "the day the milestone is due" in cc("notice", "step", "CPN-0001", "agree-plan", "--milestone", "M", "-w", ws, code=2)
    assert "2025-09-01 is before the step itself (2025-09-12)" in cc(
        "notice", "step", "CPN-0001", "agree-plan", "--on", "2025-09-12", "--milestone", "M", "--due", "2025-09-01", "-w", ws, code=2)
    cc("notice", "step", "CPN-0001", "agree-plan", "--on", "2025-09-12", "--milestone", "M", "--due", "2025-09-30", "-w", ws)
    assert "the milestone is due on 2025-09-30: it cannot be missed before then" in cc(
        "notice", "step", "CPN-0001", "miss", "--on", "2025-09-29", "-w", ws, code=2)
    cc("notice", "step", "CPN-0001", "miss", "--on", "2025-09-30", "-w", ws)
    for percent in ("2.5", "0", "-1", "1.234", "two"):
        assert "(contract_management.withhold_max_percent)" in cc("notice", "step", "CPN-0001", "withhold", "--percent", percent, "-w", ws, code=2)
    assert "2026-04 is outside the financial year 2025-26" in cc(
        "notice", "step", "CPN-0001", "withhold", "--percent", "1.5", "--month", "2026-04", "-w", ws, code=2)
    cc("notice", "step", "CPN-0001", "withhold", "--percent", "1.5", "-w", ws)
    [notice] = notices(Workspace.open(ws))
    # Nothing is closed, so the withholding begins in the year's first month.
    assert (notice.percent, notice.withheld_from, notice.retain_after_months) == (Decimal("1.5"), dt.date(2025, 4, 1), 3)


def test_operational_days_skip_weekends_and_england_s_bank_holidays() -> None:
    # From Friday 19 December 2025: Christmas Day, Boxing Day and New Year's Day are not operational days.
    assert operational_days_after(dt.date(2025, 12, 19), 10) == dt.date(2026, 1, 7)
    # Good Friday (3 April 2026) and Easter Monday (6 April) neither.
    assert operational_days_after(dt.date(2026, 4, 2), 1) == dt.date(2026, 4, 7)
    assert operational_days_after(dt.date(2025, 11, 3), 0) == dt.date(2025, 11, 3)


def test_what_is_due_follows_each_step_and_the_time_limits_set(tmp_path: Path) -> None:
    root = make(tmp_path / "ws", "[contract_management]\ncpn_meeting_days = 3\n")
    cc("notice", "open", "cpn", "COMM-2025", "--about", "Waiting times", "--on", "2025-11-03", "-w", root)
    cc("notice", "open", "aqn", "COMM-2025", "--about", "Visits above plan", "--on", "2025-11-03", "-w", root)
    cc("notice", "open", "iap-agreed", "COMM-2025", "--about", "Plan v2", "--on", "2025-04-01", "-w", root)
    cc("notice", "open", "early-warning", "COMM-2025", "--about", "Winter pressures", "--on", "2025-11-04", "-w", root)
    space = Workspace.open(root)

    def owed(today: str) -> list[tuple]:
        return [(o.reference, o.what, o.by, o.when and f"{o.when}", o.overdue)
                for o in due(space.settings.contract_management, notices(space), dt.date.fromisoformat(today))]

    # Monday 3 November: a meeting within 3 operational days (set) for the CPN, 10 (default) for the AQN.
    assert owed("2025-11-06") == [("CPN-0001", "contract management meeting", "commissioner and provider", "2025-11-06", False),
                                  ("AQN-0001", "activity management meeting", "commissioner and provider", "2025-11-17", False)]
    assert owed("2025-11-07")[0][-1] is True
    cc("notice", "step", "AQN-0001", "meet", "--on", "2025-11-17", "-w", root)
    cc("notice", "step", "AQN-0001", "review", "--on", "2025-11-17", "-w", root)
    # 5 operational days from Monday 17 November to agree an activity management plan.
    assert ("AQN-0001", "agree an activity management plan, or find the activity justified", "commissioner and provider", "2025-11-24",
            False) in owed("2025-11-20")
    cc("notice", "step", "AQN-0001", "agree-plan", "--on", "2025-11-20", "--milestone", "Referral triage in place", "--due", "2026-01-15", "-w", root)
    assert ("AQN-0001", "milestone of the activity management plan: Referral triage in place", "provider", "2026-01-15", False) in owed("2025-11-20")
    cc("notice", "step", "AQN-0001", "complete", "--on", "2026-01-15", "-w", root)
    assert [o[0] for o in owed("2026-01-15")] == ["CPN-0001"]
    table = cc("notice", "due", "--on", "2026-01-15", "-w", root)
    assert "2025-11-06 overdue" in table and "CPN-0001" in table and "AQN-0001" not in table


def test_an_unknown_contract_management_setting_is_an_error_at_its_line(tmp_path: Path) -> None:
    root = make(tmp_path / "ws", "[contract_management]\ncpn_meeting_days = 10\nmeeting_days = 3\n")
    said = cc("notice", "list", "-w", root, code=2)
    assert "carecontracts.toml:4" in said and "contract_management.meeting_days" in said and "unknown setting" in said
    root = make(tmp_path / "ws2", "[contract_management]\nwithhold_max_percent = 0\n")
    assert "contract_management.withhold_max_percent" in cc("notice", "list", "-w", root, code=2)


def test_editing_a_notice_s_event_is_found_by_log_verify(ws: Path) -> None:
    cc("notice", "open", "cpn", "COMM-2025", "--about", "Waiting times", "--on", "2025-09-01", "-w", ws)
    cc("notice", "step", "CPN-0001", "meet", "--on", "2025-09-10", "-w", ws)
    assert "the chain of" in cc("log", "verify", "-w", ws)
    with sqlite3.connect(ws / ".carecontracts" / "records.sqlite") as con:
        (sequence,) = con.execute("SELECT sequence FROM events WHERE kind = 'notice.meet'").fetchone()
        con.execute("UPDATE events SET details = replace(details, '2025-09-10', '2025-09-09') WHERE sequence = ?", (sequence,))
    assert f"event {sequence} was changed after it was written" in cc("log", "verify", "-w", ws, code=2)
