"""The shared service on a small example workspace: who sees which contracts, by page and by
API, for every route and every kind of user; sign-in, tokens, lockout and the log.

Who sees what is written out by hand below from the example's contracts, not asked of the code:
ICB-NCL commissions eight contracts; ICB-NEL only shares ACUTE-2025; ACUTE-RFH is paid under
ACUTE-2025 and is a member of the OPA-2025 alliance; PRIME-MSK holds MSK-2025 and pays its three
sub-contractors; MOVE-CHARITY is the sub-contractor of MSK-2025-SUPPORT only."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
import tempfile
import time
import subprocess
from decimal import Decimal
from pathlib import Path

import duckdb
import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount
from typer.testing import CliRunner

from carecontracts.cli import app as cli_app
from carecontracts.service.app import create_app
from tests.service.serving import cli, serving

runner = CliRunner()
PASSWORD = "correct horse battery"
ALL = {"ACUTE-2025", "COMMUNITY-2025", "GP-2025", "ISP-2025", "MH-2025", "MSK-2025", "MSK-2025-ORTHO", "MSK-2025-PHYSIO",
       "MSK-2025-SUPPORT", "OOA-2025", "OPA-2025"}
USERS = {  # name: (party, role, the contracts it may see)
    "ncl": ("ICB-NCL", "commissioner", {"ACUTE-2025", "COMMUNITY-2025", "GP-2025", "ISP-2025", "MH-2025", "MSK-2025", "OOA-2025", "OPA-2025"}),
    "nel": ("ICB-NEL", "commissioner", {"ACUTE-2025"}),
    "rfh": ("ACUTE-RFH", "provider", {"ACUTE-2025", "OPA-2025"}),
    "prime": ("PRIME-MSK", "provider", {"MSK-2025", "MSK-2025-ORTHO", "MSK-2025-PHYSIO", "MSK-2025-SUPPORT"}),
    "charity": ("MOVE-CHARITY", "provider", {"MSK-2025-SUPPORT"}),
    "ageuk": ("AGE-UK-NCL", "alliance member", {"OPA-2025"}),
    "auditor": (None, "auditor", ALL),
    "admin": (None, "admin", ALL),
}
MONTH = "2025-11"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ws = tmp_path_factory.mktemp("service") / "example"
    cli("init", ws, "--rows", 6000)
    cli("load", "-w", ws)
    cli("pay", "year", "-w", ws)
    return ws


@pytest.fixture(scope="module")
def tokens(workspace: Path) -> dict[str, str]:
    """Each user added through the command line; the last line printed is its token."""
    found = {}
    for name, (party, role, _) in USERS.items():
        args = ["users", "add", name, "-w", workspace, "--role", role.replace(" ", "-"), "--password-stdin"]
        found[name] = cli(*args, *(["--party", party] if party else []), input=PASSWORD + "\n").strip().splitlines()[-1]
    return found


@pytest.fixture(scope="module")
def client(workspace: Path, tokens: dict[str, str]) -> TestClient:
    """The service, with one challenge on record: CH-0001, ICB-NCL's to ACUTE-2025's November fixed
    payment; and one notice, CPN-0001, on ACUTE-2025 (ICB-NCL co-ordinates, ICB-NEL is an associate)."""
    cli("challenge", "raise", "ACUTE-2025", MONTH, "-w", workspace, "--component", "api.fixed", "--payer", "ICB-NCL", "--reason", "coding")
    cli("notice", "open", "cpn", "ACUTE-2025", "-w", workspace, "--about", "Cancer 62-day standard missed", "--on", "2025-11-03")
    return TestClient(create_app(workspace))


def api(client: TestClient, token: str | None, path: str) -> httpx.Response:
    return client.get(path, headers={"Authorization": f"Bearer {token}"} if token else {})


def signed_in(workspace: Path, name: str) -> TestClient:
    """A browser-like client with a session for the user."""
    browser = TestClient(create_app(workspace))
    form = browser.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    done = browser.post("/sign-in", data={"user": name, "password": PASSWORD, "csrf": csrf, "next": "/"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/", done.text
    return browser


def warehouse_lines(workspace: Path, contracts: set[str], month: str | None) -> list[tuple]:
    """The stored lines of the contracts, read straight from the warehouse (not through the service)."""
    with duckdb.connect(str(workspace / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT contract, component, payer, payee, month, amount FROM statements"
                           + (" WHERE month = ?" if month else ""), [dt.date.fromisoformat(month + "-01")] if month else []).fetchall()
    return sorted((c, comp, payer, payee, m.isoformat(), format(a, "f")) for c, comp, payer, payee, m, a in rows if c in contracts)


def as_tuples(lines: list[dict]) -> list[tuple]:
    return sorted((x["contract"], x["component"], x["payer"], x["payee"], x["month"], x["amount"]) for x in lines)


# --- the authorisation matrix ----------------------------------------------------------------

# Every route of the service, with how it is guarded. A route missing here fails the first test.
ROUTES = {
    ("GET", "/api/health"): "public",
    ("GET", "/api/me"): "api",
    ("GET", "/api/contracts"): "api",
    ("GET", "/api/statements"): "api",
    ("GET", "/api/contracts/{contract}/statements"): "api contract",
    ("GET", "/api/positions"): "api",
    ("GET", "/api/submissions"): "api",
    ("POST", "/api/submissions"): "api action",
    ("GET", "/api/challenges"): "api",
    ("POST", "/api/challenges"): "api action",
    ("POST", "/api/challenges/{reference}/answer"): "api action",
    ("POST", "/api/challenges/{reference}/decide"): "api action",
    ("POST", "/api/months/{month}/close"): "api action",
    ("POST", "/api/pay"): "api action",
    ("GET", "/api/jobs/{job_id}"): "api",
    ("GET", "/api/notices"): "api",
    ("POST", "/api/notices"): "api action",
    ("GET", "/api/notices/{reference}"): "api notice",
    ("POST", "/api/notices/{reference}/steps"): "api action",
    ("GET", "/api/due"): "api",
    ("POST", "/api/outlook"): "api action",
    ("GET", "/api/outlook"): "api",
    ("GET", "/sign-in"): "public",
    ("POST", "/sign-in"): "form",
    ("POST", "/sign-out"): "form",
    ("GET", "/"): "page",
    ("GET", "/statements"): "page",
    ("GET", "/contracts/{contract}"): "page contract",
    ("GET", "/submissions"): "page",
    ("POST", "/submissions"): "page form",
    ("GET", "/challenges"): "page",
    ("POST", "/challenges"): "page form",
    ("POST", "/challenges/{reference}/answer"): "page form",
    ("POST", "/challenges/{reference}/decide"): "page form",
    ("POST", "/close"): "page form",
    ("POST", "/pay"): "page form",
    ("GET", "/jobs/{job_id}"): "page",
    ("POST", "/outlook"): "page form",
    ("GET", "/pack.xlsx"): "page",
    ("GET", "/notices"): "page",
    ("POST", "/notices"): "page form",
    ("GET", "/notices/{reference}"): "page notice",
    ("POST", "/notices/{reference}/steps"): "page form",
    ("GET", "/api/openapi.json"): "public",
    ("GET", "/api/docs"): "public",
}


def test_every_route_is_in_the_matrix(client: TestClient) -> None:
    served = set()
    for route in client.app.routes:
        if isinstance(route, Mount):
            assert route.path == "/assets", f"an unexpected mount {route.path}"
            continue
        for method in sorted(route.methods - {"HEAD"}):
            served.add((method, route.path))
    assert served == set(ROUTES), f"routes not in the matrix: {served - set(ROUTES)}; in the matrix but not served: {set(ROUTES) - served}"
    assert all(isinstance(r, APIRoute) or r.path.startswith("/api/docs") or r.path == "/api/openapi.json" or isinstance(r, Mount)
               for r in client.app.routes)


def filled(path: str) -> str:
    reference = "CPN-0001" if "notices" in path else "CH-0001"
    return path.replace("{contract}", "ACUTE-2025").replace("{reference}", reference).replace("{month}", "2025-11").replace("{job_id}", "0")


def test_the_api_without_a_live_token_is_401(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    for (method, path), guard in ROUTES.items():
        if not guard.startswith("api"):
            continue
        url = filled(path)
        for token in (None, "cc_not-a-token", tokens["rfh"][:-1]):
            response = client.request(method, url, headers={"Authorization": f"Bearer {token}"} if token else {})
            assert response.status_code == 401, (url, token, response.text)
            assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("user", sorted(USERS))
def test_api_routes_by_role_and_contract(client: TestClient, workspace: Path, tokens: dict[str, str], user: str) -> None:
    party, role, sees = USERS[user]
    token = tokens[user]
    me = api(client, token, "/api/me").json()
    assert (me["party"], me["role"], set(me["contracts"])) == (party, role, sees)
    assert {c["contract"] for c in api(client, token, "/api/contracts").json()} == sees
    mine = api(client, token, f"/api/statements?month={MONTH}")
    assert mine.status_code == 200
    assert as_tuples(mine.json()) == warehouse_lines(workspace, sees, MONTH) != []
    for contract in sorted(ALL):
        response = api(client, token, f"/api/contracts/{contract}/statements?month={MONTH}")
        if contract in sees:
            assert response.status_code == 200, (user, contract)
            assert as_tuples(response.json()) == warehouse_lines(workspace, {contract}, MONTH)
        else:
            assert response.status_code == 404, (user, contract, response.text)
            assert response.json() == {"detail": f"no contract {contract!r} that you are party to"}
    assert api(client, token, "/api/contracts/NO-SUCH/statements").status_code == 404


@pytest.mark.parametrize("user", sorted(USERS))
def test_pages_by_role_and_contract(workspace: Path, tokens: dict[str, str], user: str) -> None:
    _, _, sees = USERS[user]
    browser = signed_in(workspace, user)
    home = browser.get("/")
    assert home.status_code == 200
    assert set(re.findall(r'href="/contracts/([^"]+)"', home.text)) == sees
    statements = browser.get(f"/statements?month={MONTH}")
    assert statements.status_code == 200
    assert set(re.findall(r'<a href="/contracts/([^"]+)">', statements.text)) == {c for c, *_ in warehouse_lines(workspace, sees, MONTH)}
    for contract in sorted(ALL):
        page = browser.get(f"/contracts/{contract}?month={MONTH}")
        assert page.status_code == (200 if contract in sees else 404), (user, contract)
        if contract not in sees:
            assert "Page not found" in page.text and "£" not in page.text


def test_pages_without_a_session_go_to_sign_in(workspace: Path, tokens: dict[str, str]) -> None:
    anonymous = TestClient(create_app(workspace))
    for (method, path), guard in ROUTES.items():
        if guard.startswith("page"):
            url = filled(path)
            response = anonymous.request(method, url, follow_redirects=False, data={"csrf": "forged"} if method == "POST" else None)
            assert response.status_code == 303 and response.headers["location"] == f"/sign-in?next={url}", url
        if guard == "form":
            assert anonymous.post(path, data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    # A bearer token does not open the pages, nor a session the API.
    assert anonymous.get("/", headers={"Authorization": f"Bearer {tokens['ncl']}"}, follow_redirects=False).status_code == 303
    assert signed_in(workspace, "ncl").get("/api/me").status_code == 401


def test_a_sub_contractor_sees_only_its_own_sub_contract(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    token = tokens["charity"]
    assert api(client, token, "/api/contracts/MSK-2025/statements").status_code == 404
    lines = api(client, token, "/api/statements").json()
    assert lines and {x["contract"] for x in lines} == {"MSK-2025-SUPPORT"}
    assert {x["payer"] for x in lines} == {"PRIME-MSK"} and {x["payee"] for x in lines} == {"MOVE-CHARITY"}
    # ... while the prime sees both sides: what the ICB pays it and what it pays the charity.
    prime = {x["contract"] for x in api(client, tokens["prime"], "/api/statements").json()}
    assert {"MSK-2025", "MSK-2025-SUPPORT"} <= prime


def test_amounts_are_exact_decimal_text_and_add_up(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    lines = api(client, tokens["auditor"], f"/api/statements?month={MONTH}").json()
    assert all(isinstance(x["amount"], str) and re.fullmatch(r"-?\d+\.\d\d", x["amount"]) for x in lines)
    with duckdb.connect(str(workspace / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        (total,) = con.execute("SELECT sum(amount) FROM statements WHERE month = DATE '2025-11-01'").fetchone()
    assert sum(Decimal(x["amount"]) for x in lines) == total


def test_a_bad_month_is_422_saying_what_was_expected(client: TestClient, tokens: dict[str, str]) -> None:
    response = api(client, tokens["ncl"], "/api/statements?month=2025-13")
    assert response.status_code == 422
    assert response.json() == {"detail": "month: '2025-13' is not a month; expected YYYY-MM, e.g. 2025-11"}


# --- users, tokens, sign-in ------------------------------------------------------------------


def test_tokens_and_passwords_are_kept_only_as_hashes(workspace: Path, tokens: dict[str, str]) -> None:
    store = workspace / ".carecontracts" / "records.sqlite"
    raw = store.read_bytes()
    assert all(token.encode() not in raw for token in tokens.values()) and PASSWORD.encode() not in raw
    with sqlite3.connect(store) as con:
        kept = {h for (h,) in con.execute("SELECT token_hash FROM tokens")}
        hashes = [h for (h,) in con.execute("SELECT password_hash FROM users")]
    assert {hashlib.sha256(t.encode()).hexdigest() for t in tokens.values()} <= kept
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_a_revoked_token_stops_working_and_a_new_one_works(client: TestClient, workspace: Path) -> None:
    first = cli("users", "add", "temp", "-w", workspace, "--party", "ICB-NEL", "--role", "commissioner").strip().splitlines()[-1]
    assert api(client, first, "/api/me").status_code == 200
    second = cli("users", "token", "temp", "-w", workspace).strip().splitlines()[-1]
    assert "Revoked 2 token(s) of temp." in cli("users", "revoke", "temp", "-w", workspace)
    assert api(client, first, "/api/me").status_code == 401 and api(client, second, "/api/me").status_code == 401
    third = cli("users", "token", "temp", "-w", workspace).strip().splitlines()[-1]
    assert api(client, third, "/api/me").json()["party"] == "ICB-NEL"


def test_five_failed_sign_ins_lock_the_user(workspace: Path, tokens: dict[str, str]) -> None:
    cli("users", "add", "locky", "-w", workspace, "--party", "GP-FED", "--role", "provider", "--password-stdin", input=PASSWORD + "\n")
    browser = TestClient(create_app(workspace))
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/sign-in").text).group(1)

    def attempt(password: str) -> httpx.Response:
        return browser.post("/sign-in", data={"user": "locky", "password": password, "csrf": csrf}, follow_redirects=False)

    for _ in range(4):
        assert "not right" in attempt("wrong password!").text
    assert "locked for 15 minutes" in attempt("wrong password!").text
    refused = attempt(PASSWORD)
    assert refused.status_code == 401 and "Too many failed sign-ins" in refused.text
    cli("users", "password", "locky", "-w", workspace, input=PASSWORD + "\n")
    assert attempt(PASSWORD).status_code == 303


def test_the_lock_lifts_after_fifteen_minutes(workspace: Path, tokens: dict[str, str]) -> None:
    from carecontracts.access.users import SignInRefused, sign_in
    from carecontracts.cycle.submissions import open_records
    from carecontracts.workspace import Workspace

    cli("users", "add", "later", "-w", workspace, "--party", "GP-FED", "--role", "provider", "--password-stdin", input=PASSWORD + "\n")
    records = open_records(Workspace.open(workspace))
    start = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)
    for _ in range(5):
        with pytest.raises(SignInRefused):
            sign_in(records, "later", "nope nope nope", at=start)
    with pytest.raises(SignInRefused, match="after 09:15 UTC"):
        sign_in(records, "later", PASSWORD, at=start + dt.timedelta(minutes=14, seconds=59))
    assert sign_in(records, "later", PASSWORD, at=start + dt.timedelta(minutes=15, seconds=1)).party == "GP-FED"


def test_a_form_without_its_csrf_token_is_refused(workspace: Path, tokens: dict[str, str]) -> None:
    browser = signed_in(workspace, "rfh")
    assert browser.post("/sign-out", data={}, follow_redirects=False).status_code == 403
    assert browser.post("/sign-out", data={"csrf": "forged"}, follow_redirects=False).status_code == 403
    assert browser.get("/", follow_redirects=False).status_code == 200  # still signed in
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/").text).group(1)
    assert browser.post("/sign-out", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert browser.get("/", follow_redirects=False).status_code == 303


def test_sign_in_never_sends_a_user_to_another_site(workspace: Path, tokens: dict[str, str]) -> None:
    browser = TestClient(create_app(workspace))
    csrf = re.search(r'name="csrf" value="([^"]+)"', browser.get("/sign-in").text).group(1)
    done = browser.post("/sign-in", data={"user": "ncl", "password": PASSWORD, "csrf": csrf, "next": "//evil.example/"}, follow_redirects=False)
    assert done.headers["location"] == "/"


@pytest.mark.parametrize("args, says", [
    (["--party", "ICB-NCL", "--role", "provider"], "ICB-NCL is commissioner in the contracts, not provider"),
    (["--party", "NOBODY", "--role", "provider"], "'NOBODY' is not party to any contract"),
    (["--party", "ACUTE-RFH", "--role", "owner"], "unknown role 'owner'"),
    (["--role", "commissioner"], "a commissioner user acts for a party"),
    (["--party", "ACUTE-RFH", "--role", "provider", "--password-stdin"], "too short: 5 characters"),
])
def test_users_add_refuses_what_does_not_fit_the_contracts(workspace: Path, tokens: dict[str, str], args: list[str], says: str) -> None:
    result = runner.invoke(cli_app, ["users", "add", "someone", "-w", str(workspace), *args], input="short\n")
    assert result.exit_code == 2 and says in " ".join(result.output.split()), result.output
    assert "someone" not in cli("users", "list", "-w", workspace)


def test_a_name_already_taken_is_refused(workspace: Path, tokens: dict[str, str]) -> None:
    result = runner.invoke(cli_app, ["users", "add", "ncl", "-w", str(workspace), "--party", "ICB-NCL", "--role", "commissioner"])
    assert result.exit_code == 2 and "a user 'ncl' already exists" in result.output


# --- the log and the server ------------------------------------------------------------------


def test_log_verify_finds_an_edited_user_event(tmp_path: Path, workspace: Path, tokens: dict[str, str]) -> None:
    assert "the chain of" in cli("log", "verify", "-w", workspace)
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(workspace), str(copy)], check=True)
    with sqlite3.connect(copy / ".carecontracts" / "records.sqlite") as con:
        (sequence,) = con.execute("SELECT sequence FROM events WHERE kind = 'user.add' AND subject = 'charity'").fetchone()
        con.execute("UPDATE events SET details = replace(details, 'provider', 'admin') WHERE sequence = ?", (sequence,))
    result = runner.invoke(cli_app, ["log", "verify", "-w", str(copy)])
    assert result.exit_code == 2 and f"event {sequence} was changed after it was written" in result.output


def test_sign_ins_and_user_changes_are_events(workspace: Path, tokens: dict[str, str]) -> None:
    signed_in(workspace, "nel")
    with sqlite3.connect(workspace / ".carecontracts" / "records.sqlite") as con:
        kinds = {(k, s) for k, s in con.execute("SELECT kind, subject FROM events")}
    assert {("user.add", "nel"), ("sign-in", "nel")} <= kinds


def test_every_request_is_logged_with_its_user(client: TestClient, tokens: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="carecontracts.service"):
        api(client, tokens["rfh"], "/api/contracts/MH-2025/statements")
    assert any(r.getMessage().startswith("rfh GET /api/contracts/MH-2025/statements 404 ") for r in caplog.records)


def test_serve_answers_health_on_loopback(workspace: Path, tokens: dict[str, str]) -> None:
    with serving(workspace) as base:
        assert httpx.get(base + "/api/health").json() == {"status": "ready", "workspace": "North Central ICB example", "contracts": 11}
        mine = httpx.get(f"{base}/api/statements?month={MONTH}", headers={"Authorization": f"Bearer {tokens['nel']}"})
        assert {x["contract"] for x in mine.json()} == {"ACUTE-2025"}
    log = (workspace / ".carecontracts" / "service.log").read_text()
    assert f"nel GET /api/statements 200" in log


# --- who may act: written out by hand. Allowed, the action then checks its input (each input
# below is wrong, so nothing changes): 422. Refused: 403, or 404 where the user is not party.

N, F, X = 404, 403, 422
ACTIONS = {
    "upload a file that is not activity": (
        "POST", "/api/submissions?month=2025-11", {"files": {"file": ("notes.txt", b"hello", "text/plain")}},
        {"ncl": F, "nel": F, "rfh": X, "prime": X, "charity": X, "ageuk": F, "auditor": F, "admin": F}),
    "raise a challenge to ACUTE-2025 with no such reason": (
        "POST", "/api/challenges", {"json": {"contract": "ACUTE-2025", "month": MONTH, "reason": "nonsense", "component": "api.fixed"}},
        {"ncl": X, "nel": X, "rfh": F, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "raise a challenge to the prime's sub-contract with no such reason": (
        "POST", "/api/challenges", {"json": {"contract": "MSK-2025-SUPPORT", "month": MONTH, "reason": "nonsense", "component": "x"}},
        {"ncl": N, "nel": N, "rfh": N, "prime": X, "charity": F, "ageuk": N, "auditor": F, "admin": F}),
    "answer CH-0001 with nothing": (
        "POST", "/api/challenges/CH-0001/answer", {"json": {"response": "  "}},
        {"ncl": F, "nel": F, "rfh": X, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "decide CH-0001 with no such decision": (
        "POST", "/api/challenges/CH-0001/decide", {"json": {"decision": "nonsense"}},
        {"ncl": X, "nel": F, "rfh": F, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "close a month that does not exist": (
        "POST", "/api/months/2025-13/close", {},
        {"ncl": X, "nel": X, "rfh": F, "prime": F, "charity": F, "ageuk": F, "auditor": F, "admin": X}),
    "open a notice on ACUTE-2025 about nothing": (
        "POST", "/api/notices", {"json": {"kind": "cpn", "contract": "ACUTE-2025", "about": " "}},
        {"ncl": X, "nel": F, "rfh": F, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "give an early warning on OPA-2025 about nothing": (
        "POST", "/api/notices", {"json": {"kind": "early-warning", "contract": "OPA-2025", "about": ""}},
        {"ncl": X, "nel": N, "rfh": X, "prime": N, "charity": N, "ageuk": X, "auditor": F, "admin": F}),
    "hold CPN-0001's meeting on a day to come": (
        "POST", "/api/notices/CPN-0001/steps", {"json": {"step": "meet", "on": "2999-01-01"}},
        {"ncl": X, "nel": F, "rfh": X, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "withdraw CPN-0001 on a day before it": (
        "POST", "/api/notices/CPN-0001/steps", {"json": {"step": "withdraw", "on": "2025-01-01"}},
        {"ncl": X, "nel": F, "rfh": F, "prime": N, "charity": N, "ageuk": N, "auditor": F, "admin": F}),
    "work out the outlook over no simulated years": (
        "POST", "/api/outlook?runs=0", {},
        {"ncl": X, "nel": X, "rfh": F, "prime": F, "charity": F, "ageuk": F, "auditor": F, "admin": X}),
    "see a job that is not theirs": (
        "GET", "/api/jobs/0", {}, {user: N for user in USERS}),
}


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_who_may_act(client: TestClient, tokens: dict[str, str], action: str) -> None:
    method, url, body, expected = ACTIONS[action]
    assert set(expected) == set(USERS)
    got = {user: client.request(method, url, headers={"Authorization": f"Bearer {tokens[user]}"}, **body).status_code for user in USERS}
    assert got == expected


def test_only_commissioners_and_admins_start_a_payment_run(client: TestClient, tokens: dict[str, str]) -> None:
    for user in ("rfh", "prime", "charity", "ageuk", "auditor"):
        response = api_post(client, tokens[user], "/api/pay")
        assert response.status_code == 403 and "only admin or commissioner users may" in response.json()["detail"]


def api_post(client: TestClient, token: str, path: str, **body) -> httpx.Response:
    return client.post(path, headers={"Authorization": f"Bearer {token}"}, **body)


def test_challenges_are_seen_by_the_parties_to_their_contract(client: TestClient, tokens: dict[str, str]) -> None:
    seen = {user: [c["reference"] for c in api(client, tokens[user], "/api/challenges").json()] for user in USERS}
    assert {user for user, refs in seen.items() if "CH-0001" in refs} == {"ncl", "nel", "rfh", "auditor", "admin"}


def test_notices_and_what_is_due_are_seen_by_the_parties_to_their_contract(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    parties = {"ncl", "nel", "rfh", "auditor", "admin"}  # ACUTE-2025's commissioners and provider, and those who see everything
    for user in USERS:
        listed = [n["reference"] for n in api(client, tokens[user], "/api/notices").json()]
        one = api(client, tokens[user], "/api/notices/CPN-0001")
        due = [o["reference"] for o in api(client, tokens[user], "/api/due").json()]
        if user in parties:
            assert listed == ["CPN-0001"] and one.status_code == 200 and due == ["CPN-0001"], user
        else:
            assert listed == [] and one.status_code == 404 and due == [], user
    # Issued Monday 3 November 2025: the meeting is due within 10 operational days, by Monday 17 November.
    assert api(client, tokens["rfh"], "/api/due").json() == [{"reference": "CPN-0001", "contract": "ACUTE-2025", "what": "contract management meeting",
                                                              "by": "commissioner and provider", "when": "2025-11-17", "overdue": True}]
    # The pages say the same, and only to the parties.
    assert "2025-11-17" in signed_in(workspace, "nel").get("/notices").text
    assert signed_in(workspace, "charity").get("/notices/CPN-0001").status_code == 404


def test_each_party_sees_only_its_own_outlook(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    started = api_post(client, tokens["ncl"], "/api/outlook?runs=20")
    assert started.status_code == 202 and (started.json()["state"], started.json()["total"]) == ("running", 20)
    # One job at a time writes the warehouse: the same request again is the same job; other work waits its turn.
    assert api_post(client, tokens["ncl"], "/api/outlook?runs=20").json()["id"] == started.json()["id"]
    busy = api_post(client, tokens["admin"], "/api/pay")
    assert busy.status_code == 409 and "started by ncl, is running" in busy.json()["detail"]
    deadline = time.monotonic() + 300
    while (job := api(client, tokens["ncl"], f"/api/jobs/{started.json()['id']}").json())["state"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert (job["state"], job["done"]) == ("done", 20), job
    every = api(client, tokens["auditor"], "/api/outlook").json()
    # Nothing is closed and the example's activity runs to March: the forecast is the year as paid,
    # so each party's forecast net is its position as the payment run stored it, whatever the method.
    with duckdb.connect(str(workspace / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        paid = {party: format(net, "f") for party, net in con.execute("SELECT party, net FROM positions WHERE scenario = 'actual'").fetchall()}
    assert {r["as_of"] for r in every} == {"2026-03-01"} and {r["runs"] for r in every} == {20}
    assert all(r["forecast_net"] == r["forecast_low"] == r["forecast_high"] == paid[r["party"]] for r in every)
    assert sum(Decimal(r["forecast_net"]) for r in every) == 0  # every pound paid is a pound received
    assert all(Decimal(r["p5"]) <= Decimal(r["p50"]) <= Decimal(r["p95"]) for r in every)
    for user, (party, _, _) in USERS.items():
        rows = api(client, tokens[user], "/api/outlook").json()
        assert [r["party"] for r in rows] == ([party] if party else [r["party"] for r in every]), user
    home = signed_in(workspace, "charity").get("/").text
    assert "Forecast net position at outturn" in home and "MOVE-CHARITY" in home and "ICB-NCL" not in home.split("Outlook for")[1]


def test_a_party_sees_only_its_own_position(client: TestClient, workspace: Path, tokens: dict[str, str]) -> None:
    with duckdb.connect(str(workspace / ".carecontracts" / "warehouse.duckdb"), read_only=True) as con:
        every = {party: format(net, "f") for party, net in con.execute("SELECT party, net FROM positions WHERE scenario = 'actual'").fetchall()}
    for user, (party, _, _) in USERS.items():
        rows = api(client, tokens[user], "/api/positions").json()
        if party is None:
            assert {r["party"]: r["net"] for r in rows} == every
        else:
            assert [(r["party"], r["net"]) for r in rows] == [(party, every[party])]
    # income less payments is the net, to the penny
    assert all(Decimal(r["income"]) - Decimal(r["payments"]) == Decimal(r["net"]) for r in api(client, tokens["auditor"], "/api/positions").json())


def test_submissions_are_seen_by_the_parties_paying_or_paid_for_them(client: TestClient, tokens: dict[str, str]) -> None:
    providers = {user: {s["provider"] for s in api(client, tokens[user], "/api/submissions").json()} for user in USERS}
    assert providers["charity"] == {"MOVE-CHARITY"}
    assert providers["nel"] == {"ACUTE-RFH"}
    assert providers["auditor"] >= {"ACUTE-RFH", "MOVE-CHARITY", "MH-TRUST", "ACUTE-WHH"}
    assert "MOVE-CHARITY" not in providers["rfh"] and "ACUTE-RFH" in providers["rfh"]


def test_page_forms_refuse_those_who_may_not_act(workspace: Path, tokens: dict[str, str]) -> None:
    provider = signed_in(workspace, "rfh")
    csrf = re.search(r'name="csrf" value="([^"]+)"', provider.get("/").text).group(1)
    for path, data in (("/close", {"month": MONTH}), ("/pay", {}), ("/outlook", {"runs": "20"}), ("/challenges", {"contract": "ACUTE-2025", "month": MONTH, "reason": "coding"})):
        refused = provider.post(path, data={"csrf": csrf, **data}, follow_redirects=False)
        assert refused.status_code == 403 and "You cannot do that" in refused.text, path
    commissioner = signed_in(workspace, "ncl")
    csrf = re.search(r'name="csrf" value="([^"]+)"', commissioner.get("/").text).group(1)
    refused = commissioner.post("/submissions", data={"csrf": csrf, "month": MONTH}, files={"file": ("a.csv", b"x", "text/csv")})
    assert refused.status_code == 403


def test_an_amount_not_in_pounds_and_pence_is_refused_and_nothing_changes(client: TestClient, tokens: dict[str, str]) -> None:
    for amount in ("12.345", "a lot"):
        refused = api_post(client, tokens["ncl"], "/api/challenges/CH-0001/decide", json={"decision": "uphold", "amount": amount})
        assert refused.status_code == 422 and refused.json()["problems"][0]["source"] == "amount", refused.text
    assert [c["state"] for c in api(client, tokens["ncl"], "/api/challenges").json() if c["reference"] == "CH-0001"] == ["raised"]


def test_an_unknown_user_is_refused_as_a_wrong_password_is(workspace: Path, tokens: dict[str, str]) -> None:
    from carecontracts.access.users import SignInRefused, sign_in
    from carecontracts.cycle.submissions import open_records
    from carecontracts.workspace import Workspace

    records = open_records(Workspace.open(workspace))
    messages = []
    for name in ("nobody-at-all", "ncl"):
        with pytest.raises(SignInRefused) as refused:
            sign_in(records, name, "not the password at all")
        messages.append(str(refused.value))
    assert messages == ["The user name or password is not right."] * 2


def test_each_party_downloads_its_own_statement_pack(workspace: Path, tokens: dict[str, str], tmp_path: Path) -> None:
    import openpyxl

    for user in ("charity", "nel"):
        party, _, sees = USERS[user]
        pack = signed_in(workspace, user).get("/pack.xlsx")
        assert pack.status_code == 200 and f"statements-2025-26-{party}.xlsx" in pack.headers["content-disposition"]
        path = tmp_path / f"{user}.xlsx"
        path.write_bytes(pack.content)
        sheet = openpyxl.load_workbook(path, read_only=True)["Lines"]
        rows = list(sheet.iter_rows(values_only=True))
        header = list(rows[0])
        lines = [dict(zip(header, r)) for r in rows[1:] if r[header.index("contract")]]
        assert {x["contract"] for x in lines} == sees
        expected = sum(Decimal(a) for *_, a in warehouse_lines(workspace, sees, None))
        assert sum(Decimal(str(x["amount"])) for x in lines) == expected
    assert not list(Path(tempfile.gettempdir()).glob("pack-*/*.xlsx")), "a sent pack is removed"


def test_revoking_a_user_ends_its_page_sessions_too(workspace: Path, tokens: dict[str, str]) -> None:
    cli("users", "add", "leaver", "-w", workspace, "--party", "MH-TRUST", "--role", "provider", "--password-stdin", input=PASSWORD + "\n")
    browser = signed_in(workspace, "leaver")
    assert browser.get("/", follow_redirects=False).status_code == 200
    cli("users", "revoke", "leaver", "-w", workspace)
    assert browser.get("/", follow_redirects=False).status_code == 303
    assert signed_in(workspace, "leaver").get("/", follow_redirects=False).status_code == 200  # a new sign-in works


def test_who_added_a_user_is_on_record(workspace: Path, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARECONTRACTS_USER", "the.admin")
    cli("users", "add", "recorded", "-w", workspace, "--party", "OOA-TRUST", "--role", "provider")
    with sqlite3.connect(workspace / ".carecontracts" / "records.sqlite") as con:
        assert con.execute("SELECT created_by FROM users WHERE name = 'recorded'").fetchone() == ("the.admin",)
        assert con.execute("SELECT t.issued_by FROM tokens t JOIN users u ON u.id = t.user_id WHERE u.name = 'recorded'").fetchone() == ("the.admin",)
        assert con.execute("SELECT actor FROM events WHERE kind = 'user.add' AND subject = 'recorded'").fetchone() == ("the.admin",)
