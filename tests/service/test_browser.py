"""The pages in a real browser: Debian's Chromium, driven by Playwright, against the service
running on loopback. A provider signs in, reads its statements and cannot open another party's
contract; a wrong password is told so on the page; a contract performance notice is taken through
to a withholding that both sides see on the next statement."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import pytest
from playwright import sync_api as playwright

from carecontracts.money import format_money
from tests.service.serving import cli, serving

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("no Chromium: `apt-get install chromium` (bash scripts/dev.sh test installs it)", allow_module_level=True)

PASSWORD = "a long trust password"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The example, paid, with a provider and a commissioner user, served on a free loopback port."""
    ws = tmp_path_factory.mktemp("browser") / "example"
    cli("init", ws, "--rows", 4000)
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    cli("users", "add", "rfh.contracts", "-w", ws, "--party", "ACUTE-RFH", "--role", "provider", "--password-stdin", input=PASSWORD + "\n")
    cli("users", "add", "ncl.finance", "-w", ws, "--party", "ICB-NCL", "--role", "commissioner", "--password-stdin", input=PASSWORD + "\n")
    with duckdb.connect(str(ws / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        con.execute("COPY (SELECT * EXCLUDE (source_file, source_row) FROM activity WHERE provider = 'ACUTE-RFH' AND end_date >= DATE '2025-11-01' "
                    f"AND end_date < DATE '2025-12-01' ORDER BY activity_id) TO '{ws / 'rfh-2025-11.csv'}' (HEADER)")
        con.execute("COPY (SELECT * EXCLUDE (source_file, source_row) REPLACE ('MH-TRUST' AS provider) FROM activity WHERE provider = 'MH-TRUST' "
                    f"AND end_date >= DATE '2025-11-01' AND end_date < DATE '2025-12-01' LIMIT 2) TO '{ws / 'wrong.csv'}' (HEADER)")
    with serving(ws) as base:
        yield base, ws


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def sign_in(browser, base: str, user: str):
    page = browser.new_page()
    page.goto(base + "/sign-in")
    page.fill("#user", user)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    return page


def test_a_provider_signs_in_and_sees_only_its_own_statements(server, browser) -> None:
    server, _ = server
    page = browser.new_page()
    page.goto(server + "/statements")
    assert page.url.startswith(server + "/sign-in")
    page.fill("#user", "rfh.contracts")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(server + "/statements")
    assert page.locator("h1").inner_text().startswith("Statements: 2026-03")
    page.select_option("#month", "2025-11")
    page.click("text=Show")
    page.wait_for_url("**/statements?month=2025-11")
    contracts = set(page.locator("tbody tr td:nth-child(2)").all_inner_texts())
    assert contracts == {"ACUTE-2025", "OPA-2025"}
    assert "rfh.contracts for ACUTE-RFH (provider)" in page.locator("header").inner_text()
    # The NHS.UK styles are served: the header is NHS blue.
    assert page.locator("header.nhsuk-header").evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(0, 94, 184)"
    page.goto(server + "/contracts/MH-2025")
    assert page.locator("h1").inner_text() == "Page not found"
    page.click("text=Sign out")
    page.wait_for_url("**/sign-in")


def test_a_wrong_password_is_told_on_the_page(server, browser) -> None:
    server, _ = server
    page = browser.new_page()
    page.goto(server + "/sign-in")
    page.fill("#user", "rfh.contracts")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".nhsuk-error-summary").inner_text().endswith("The user name or password is not right.")
    assert page.locator("#user").input_value() == "rfh.contracts"


def test_the_provider_sends_its_month_and_the_commissioner_challenges_and_closes(server, browser) -> None:
    base, ws = server
    provider = sign_in(browser, base, "rfh.contracts")
    provider.click("text=Submissions")
    provider.select_option("#month", "2025-11")
    provider.set_input_files("#file", str(ws / "wrong.csv"))
    provider.click("text=Send and check")
    report = provider.locator(".nhsuk-error-summary").inner_text()
    assert "wrong.csv:2 provider: a row of MH-TRUST, which --provider does not name (expected rows of ACUTE-RFH only)" in report
    provider.goto(base + "/submissions")
    provider.select_option("#month", "2025-11")
    provider.set_input_files("#file", str(ws / "rfh-2025-11.csv"))
    provider.click("text=Send and check")
    rows = sum(1 for _ in (ws / "rfh-2025-11.csv").open()) - 1
    assert f"ACUTE-RFH 2025-11: version 2, {rows:,} rows" in provider.locator("#validation-report").inner_text()

    icb = sign_in(browser, base, "ncl.finance")
    icb.click("text=Challenges and close")
    icb.select_option("#contract", "ACUTE-2025")
    icb.select_option("#challenge-month", "2025-11")
    icb.select_option("#reason", "coding")
    icb.fill("#component", "api.fixed")
    icb.fill("#note", "the fixed element was agreed lower at the October meeting")
    icb.click("text=Raise the challenge")
    icb.wait_for_url("**/challenges#CH-0001")
    card = icb.locator("#CH-0001")
    assert "raised" in card.inner_text() and "agreed lower at the October meeting" in card.inner_text()

    provider.goto(base + "/challenges")
    provider.fill("#response-CH-0001", "not agreed: see the signed variation")
    provider.click("#CH-0001 button:text-is('Answer')")
    provider.locator("#CH-0001", has_text="not agreed: see the signed variation").wait_for()
    assert "answered" in provider.locator("#CH-0001").inner_text()

    icb.goto(base + "/challenges")
    icb.click("#CH-0001 button:text-is('Reject')")
    icb.locator("#CH-0001", has_text="rejected").wait_for()
    icb.click("button:text-is('Price the year')")
    icb.wait_for_url("**/jobs/*")
    icb.locator("#job-state", has_text="done").wait_for(timeout=120_000)
    icb.goto(base + "/challenges")
    icb.select_option("#close-month", "2025-06")
    icb.click("button:text-is('Close')")
    icb.locator("h1", has_text="Month closed").wait_for()
    assert "2025-04 (version 1" in icb.locator(".nhsuk-panel").inner_text() and "2025-06 (version 1" in icb.locator(".nhsuk-panel").inner_text()


def test_a_performance_notice_through_to_a_withholding_on_the_next_statement(server, browser) -> None:
    base, ws = server
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    icb = sign_in(browser, base, "ncl.finance")
    icb.click("text=Contract management")
    icb.select_option("#kind", "cpn")
    icb.select_option("#notice-contract", "ACUTE-2025")
    icb.fill("#about", "Cancer 62-day standard missed three months running")
    icb.click("button:text-is('Open the notice')")
    icb.wait_for_url("**/notices/CPN-*")
    reference = icb.url.rsplit("/", 1)[1]
    assert icb.locator("#state").inner_text() == "issued"
    assert "contract management meeting, by the commissioner and provider" in icb.locator(".nhsuk-inset-text").inner_text()

    provider = sign_in(browser, base, "rfh.contracts")  # the meeting is recorded by either side
    provider.goto(f"{base}/notices/{reference}")
    assert provider.locator("#step-withdraw").count() == 0, "only the commissioner withdraws a notice"
    provider.click("#step-meet button")
    provider.locator("#state", has_text="met").wait_for()

    icb.goto(f"{base}/notices/{reference}")
    icb.fill("#milestone-agree-plan", "Weekly tracking of every patient past day 31")
    icb.fill("#due-agree-plan", today)
    icb.click("#step-agree-plan button")
    icb.locator("#state", has_text="plan").wait_for()
    icb.click("#step-miss button")
    icb.locator("#state", has_text="missed").wait_for()
    icb.fill("#percent-withhold", "2")
    icb.click("#step-withhold button")
    icb.locator("#state", has_text="withholding").wait_for()
    month = re.search(r"withheld from (\d{4}-\d{2})", icb.locator("#withholding").inner_text()).group(1)

    icb.goto(base + "/challenges")
    icb.click("button:text-is('Price the year')")
    icb.wait_for_url("**/jobs/*")
    icb.locator("#job-state", has_text="done").wait_for(timeout=120_000)

    # 2% of each commissioner's payments under ACUTE-2025 in the month, worked from the stored lines.
    with duckdb.connect(str(ws / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        values = con.execute("SELECT payer, sum(amount) FROM statements WHERE contract = 'ACUTE-2025' AND month = ? AND adjusts IS NULL "
                             "AND NOT starts_with(component, 'CPN-') GROUP BY payer", [dt.date.fromisoformat(month + "-01")]).fetchall()
    expected = {payer: -(value * Decimal("0.02")).quantize(Decimal("0.01"), ROUND_HALF_UP) for payer, value in values}
    assert set(expected) == {"ICB-NCL", "ICB-NEL"}
    for page in (icb, provider):  # the commissioner and the provider both see it on the month's statement
        page.goto(f"{base}/contracts/ACUTE-2025?month={month}")
        rows = page.locator("tbody tr", has_text=reference)
        shown = {rows.nth(i).locator("td").nth(3).inner_text().split()[-1]: rows.nth(i).locator("td").nth(5).inner_text().split()[-1]
                 for i in range(rows.count())}
        assert shown == {payer: format_money(amount) for payer, amount in expected.items()}
        assert f"GC9 notice {reference}" in rows.first.inner_text()
