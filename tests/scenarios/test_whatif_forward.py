"""A what-if asked mid-year about the rest of it, on a workspace whose activity stops at
November, worked by hand.

ISP-2025 pays £100 a case. Elective (EL) cases April to November: 8, 12, 10, 10, 9, 11, 10, 10
(80 in 8 months: a run rate of 10 a month); day cases (DC) 5 a month. With no plans and no
last year, the run rate is the forecast (the plan method falls back to it) and so is their blend. "10% fewer electives
from December" takes 1 case a month off December to March's projected 10: 4 cases, £400."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from carecontracts.cli import app

runner = CliRunner()
CONTRACT = """\
id: ISP-2025
provider: ISP
commissioner: ICB-A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: cases, kind: activity, prices: tariff, unit: cases}
"""
HEADER = "activity_id,patient_id,provider,commissioner,service,currency,pod,start_date,end_date,quantity"
ELECTIVE = {"2025-04": 8, "2025-05": 12, "2025-06": 10, "2025-07": 10, "2025-08": 9, "2025-09": 11, "2025-10": 10, "2025-11": 10}


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("forward") / "ws"
    (root / "contracts").mkdir(parents=True)
    (root / "prices").mkdir()
    (root / "data" / "activity").mkdir(parents=True)
    (root / "carecontracts.toml").write_text('name = "cut at November"\n', encoding="utf-8")
    (root / "contracts" / "isp.yaml").write_text(CONTRACT, encoding="utf-8")
    (root / "prices" / "tariff.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,100,2025-04-01,2026-03-31\n", encoding="utf-8")
    rows = []
    for month, electives in ELECTIVE.items():
        for pod, count in (("EL", electives), ("DC", 5)):
            rows += [f"{pod}{month}-{i},P{pod}{month}-{i},ISP,ICB-A,general,HRG1,{pod},{month}-15,{month}-15,1" for i in range(count)]
    (root / "data" / "activity" / "activity.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    result = runner.invoke(app, ["load", "-w", str(root)])
    assert result.exit_code == 0, result.output
    return root


def whatif(root: Path, *args: str) -> str:
    result = runner.invoke(app, ["whatif", "-w", str(root), "--provider", "ISP", "--pod", "EL", "--from", "2025-12", "--change", "-10%", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def test_without_the_forecast_there_is_nothing_to_change(cut: Path) -> None:
    said = whatif(cut)
    assert "matches no activity, so it changes nothing" in said and "no change" in said


def test_on_the_forecast_it_saves_what_the_run_rate_says(cut: Path) -> None:
    said = whatif(cut, "--as-of", "2025-11")
    assert "no seasonal forecast" in said
    # December to March projected at 15 cases a month (10 EL + 5 DC) × £100: £6,000; less 4 EL cases: £5,600.
    assert "run_rate (run rate of the year to date) │ £6,000.00 │ £5,600.00 │ -£400.00" in said and "What commissioners pay on the forecast" in said
    assert "2025-12 to 2026-03 projected" in said
    assert "In all, M9–M12 2025-12..2026-03, on the blend forecast (2025-12 to 2026-03 projected): a saving of £400.00 to what commissioners pay." in said


def test_from_an_earlier_month_actual_months_change_too(cut: Path) -> None:
    # From October: October and November's actual 20 EL cases lose 2 (£200), December to March 4 (£400).
    result = runner.invoke(app, ["whatif", "-w", str(cut), "--provider", "ISP", "--pod", "EL", "--from", "2025-10", "--change", "-10%",
                                 "--as-of", "2025-11"])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "(2025-10 to 2025-11 actual; 2025-12 to 2026-03 projected)" in said
    assert "a saving of £600.00 to what commissioners pay." in said


ACUTE = """\
id: ACUTE-2025
provider: ACUTE
commissioner: ICB-A
term: {start: 2025-04-01, end: 2026-03-31}
components:
  - {id: cases, kind: activity, prices: acute, unit: cases}
"""


@pytest.fixture(scope="module")
def with_acute(cut: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cut workspace and an acute trust's contract at £150 a case, with no activity of its own."""
    import shutil

    moved = tmp_path_factory.mktemp("acute") / "ws"
    shutil.copytree(cut, moved)
    (moved / "contracts" / "acute.yaml").write_text(ACUTE, encoding="utf-8")
    (moved / "prices" / "acute.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,150,2025-04-01,2026-03-31\n", encoding="utf-8")
    assert runner.invoke(app, ["load", "-w", str(moved)]).exit_code == 0
    return moved


def move_half(root: Path, *args: str) -> str:
    result = runner.invoke(app, ["whatif", "-w", str(root), "--provider", "ISP", "--pod", "EL", "--change", "50%", "--move-to", "ACUTE", *args])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    return said


def test_projected_activity_moved_to_another_provider_is_paid_at_its_terms(with_acute: Path) -> None:
    """Half of ISP's electives from December go to the acute trust: 5 of the 10 projected a
    month, 20 cases December to March. ISP is paid 20 × £100 = £2,000 less, the trust
    20 × £150 = £3,000 more: commissioners pay £1,000 more, on every method (the run rate is
    each one's forecast here)."""
    said = move_half(with_acute, "--from", "2025-12", "--as-of", "2025-11")
    assert "run_rate (run rate of the year to date) │ £6,000.00 │ £7,000.00 │ £1,000.00" in said
    assert "ISP-2025: saves £2,000.00" in said and "ACUTE-2025: costs £3,000.00" in said
    assert "an extra £1,000.00 to what commissioners pay." in said


def test_a_move_within_actual_months_is_the_same_on_the_forecast(with_acute: Path) -> None:
    """June to November's 60 electives, half moved: 30 × £100 = £3,000 less to ISP, 30 × £150
    = £4,500 more to the trust, £1,500 in all, whether or not the rest of the year is projected
    (the projected months do not change)."""
    for args in ((), ("--as-of", "2025-11")):
        said = move_half(with_acute, "--from", "2025-06", "--to", "2025-11", *args)
        assert "ISP-2025: saves £3,000.00" in said and "ACUTE-2025: costs £4,500.00" in said
        assert "an extra £1,500.00 to what commissioners pay." in said


def test_moving_to_a_provider_no_contract_pays_for_it_is_a_warning(with_acute: Path, tmp_path: Path) -> None:
    """The acute trust's only contract is with another commissioner, so ICB-A's electives moved
    there are paid by no one: the £2,000 ISP loses is not a saving anyone would see, and both the
    forecast and the actual months say so, naming the units (20 from December; 30 of June to
    November's 60)."""
    import shutil

    elsewhere = tmp_path / "ws"
    shutil.copytree(with_acute, elsewhere)
    (elsewhere / "contracts" / "acute.yaml").write_text(ACUTE.replace("commissioner: ICB-A", "commissioner: ICB-B"), encoding="utf-8")
    for args, units in ((("--from", "2025-12", "--as-of", "2025-11"), "20 of the 20"), (("--from", "2025-06", "--to", "2025-11"), "30 of the 30")):
        said = move_half(elsewhere, *args)
        assert f"{units} units moved are counted by none of ACUTE's contracts, so no one is paid for them" in said
    assert "units moved are counted by none" not in move_half(with_acute, "--from", "2025-12", "--as-of", "2025-11")


def test_units_counted_by_two_components_are_matched_once(cut: Path, tmp_path: Path) -> None:
    """ISP's contract also pays a £10 supplement on every case, so each case is counted by two
    components. 40 fewer electives from December are the 40 projected (10 a month), not half of
    80: both components lose all 40, 40 × (£100 + £10) = £4,400."""
    import shutil

    both = tmp_path / "ws"
    shutil.copytree(cut, both)
    (both / "contracts" / "isp.yaml").write_text(
        CONTRACT + "  - {id: supplement, kind: activity, prices: supplement, unit: cases}\n", encoding="utf-8")
    (both / "prices" / "supplement.csv").write_text("currency,unit_price,valid_from,valid_to\nHRG1,10,2025-04-01,2026-03-31\n", encoding="utf-8")
    assert runner.invoke(app, ["load", "-w", str(both)]).exit_code == 0
    result = runner.invoke(app, ["whatif", "-w", str(both), "--provider", "ISP", "--pod", "EL", "--from", "2025-12", "--change", "-40",
                                 "--as-of", "2025-11"])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, said
    assert "a saving of £4,400.00 to what commissioners pay." in said


def test_fewer_referrals_become_fewer_cases_after_the_lag(cut: Path) -> None:
    """40 fewer elective referrals in December and January, 25% of which become cases two
    months later: 10 fewer cases over February and March, where 10 + 10 electives are
    projected, so 5 fewer each month: 10 × £100 = £1,000 less of the £3,000 projected for
    those months (15 cases a month, day cases too); December and January do not change."""
    (cut / "referrals.yaml").write_text(
        "name: fewer referrals\nchanges:\n  - referrals: {provider: [ISP], pod: [EL], from: 2025-12-01, to: 2026-01-31}\n"
        "    units: -40\n    conversion_percent: 25\n    lag_months: 2\n", encoding="utf-8")
    result = runner.invoke(app, ["whatif", str(cut / "referrals.yaml"), "-w", str(cut), "--as-of", "2025-11"])
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "-40 referrals, 25% becoming activity: -10 units, 2 months later (provider ISP; pod EL; 2026-02 to 2026-03)" in said
    assert "run_rate (run rate of the year to date) │ £3,000.00 │ £2,000.00 │ -£1,000.00" in said
    assert "a saving of £1,000.00 to what commissioners pay." in said


def test_a_referral_change_needs_its_first_month_for_a_lag(cut: Path) -> None:
    (cut / "lagless.yaml").write_text("changes:\n  - referrals: {provider: [ISP]}\n    units: -40\n    lag_months: 2\n", encoding="utf-8")
    result = runner.invoke(app, ["whatif", str(cut / "lagless.yaml"), "-w", str(cut), "--as-of", "2025-11"])
    assert result.exit_code == 2 and "lagless.yaml:2" in result.output and "needs 'from'" in " ".join(result.output.split())
