"""The pages in a real browser: Debian's Chromium, driven by Playwright, against the service
running on loopback. A provider signs in, reads its statements and cannot open another party's
contract; a wrong password is told so on the page."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from playwright import sync_api as playwright
from typer.testing import CliRunner

from carecontracts.cli import app as cli_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("no Chromium: `apt-get install chromium` (bash scripts/dev.sh test installs it)", allow_module_level=True)

runner = CliRunner()
PASSWORD = "a long trust password"


def cli(*args: object, input: str | None = None) -> str:
    result = runner.invoke(cli_app, [str(a) for a in args], input=input)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    """The example, paid, with a provider and a commissioner user, served on a free loopback port."""
    ws = tmp_path_factory.mktemp("browser") / "example"
    cli("init", ws, "--rows", 4000)
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    cli("users", "add", "rfh.contracts", "-w", ws, "--party", "ACUTE-RFH", "--role", "provider", "--password-stdin", input=PASSWORD + "\n")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    process = subprocess.Popen([str(Path(sys.executable).parent / "carecontracts"), "serve", "-w", str(ws), "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(base + "/api/health", timeout=2)
            break
        except httpx.TransportError:
            assert process.poll() is None and time.monotonic() < deadline, "the service did not start"
            time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield chromium
        chromium.close()


def test_a_provider_signs_in_and_sees_only_its_own_statements(server: str, browser) -> None:
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


def test_a_wrong_password_is_told_on_the_page(server: str, browser) -> None:
    page = browser.new_page()
    page.goto(server + "/sign-in")
    page.fill("#user", "rfh.contracts")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.locator(".nhsuk-error-summary").inner_text().endswith("The user name or password is not right.")
    assert page.locator("#user").input_value() == "rfh.contracts"
