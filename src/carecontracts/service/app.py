"""The service: NHS.UK pages and a JSON API over one workspace, each party seeing exactly the
contracts it is party to. Thin: who may see what is `carecontracts.access`, the numbers are the
stored statements; this module only routes, authenticates and renders."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import BackgroundTasks, Depends, FastAPI, File, Form, HTTPException, Query, Request, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict
from starlette.middleware.sessions import SessionMiddleware

from carecontracts.access.parties import Book, Viewer, stored_outlook, stored_positions
from carecontracts.access.permissions import Refused, check
from carecontracts.access.users import SignInRefused, by_name, by_token, sign_in
from carecontracts.cycle import challenges as challenge_rules
from carecontracts.cycle import notices as notice_rules
from carecontracts.cycle.close import close_through
from carecontracts.cycle.invoices import exact_amount
from carecontracts.cycle.submissions import open_records, submissions, submit_upload
from carecontracts.problems import Problem, ProblemsError
from carecontracts.money import format_money
from carecontracts.payments import workspace_contracts
from carecontracts.periods import month_label, parse_month
from carecontracts.workspace import Workspace

HERE = Path(__file__).parent
LINE_COLUMNS = ["contract", "component", "payer", "payee", "month", "service", "currency", "quantity", "rate", "amount", "basis", "adjusts"]
log = logging.getLogger("carecontracts.service")


class SignInNeeded(Exception):
    """A page asked for without a signed-in session: answered by a redirect to the sign-in page."""

    def __init__(self, next_path: str):
        self.next_path = next_path


def secret_of(workspace: Workspace) -> str:
    """The key that signs session cookies: made once per workspace, readable only by its owner."""
    path = workspace.state_dir / "service-secret"
    if not path.exists():
        workspace.state_dir.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


def json_value(value: Any) -> Any:
    """Exact money and quantities as decimal text, dates as ISO dates: JSON numbers are floats."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def line_records(lines: pa.Table | None) -> list[dict[str, Any]]:
    """Statement lines as JSON objects with the statement's columns."""
    if lines is None:
        return []
    return [{column: json_value(row[column]) for column in LINE_COLUMNS} for row in lines.select(LINE_COLUMNS).to_pylist()]


def month_of(text: str | None) -> dt.date | None:
    """A `month` query parameter, or a 422 that says what was expected."""
    if text is None or text == "":
        return None
    try:
        return parse_month(text)
    except ValueError as error:
        raise HTTPException(status_code=422, detail=f"month: {error}") from None


class RequestLog:
    """Every request written to the service's log with its user, status and time (a plain ASGI
    middleware: the decorator form costs a task per request)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            who = scope.get("state", {}).get("user") or "-"
            log.info("%s %s %s %s %.1fms", who, scope["method"], scope["path"], status[0], (time.perf_counter() - started) * 1000)


class Warehouse:
    """One writer or many readers of the warehouse at a time within the service: DuckDB will
    not open one file read-only and read-write in the same process at once."""

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._readers = 0
        self._writing = False

    def reading(self) -> "_Hold":
        return _Hold(self, write=False)

    def writing(self) -> "_Hold":
        return _Hold(self, write=True)


class _Hold:
    def __init__(self, warehouse: Warehouse, write: bool):
        self.warehouse, self.write = warehouse, write

    def __enter__(self) -> None:
        w = self.warehouse
        with w._lock:
            if self.write:
                w._lock.wait_for(lambda: not w._writing and w._readers == 0)
                w._writing = True
            else:
                w._lock.wait_for(lambda: not w._writing)
                w._readers += 1

    def __exit__(self, *exc: object) -> None:
        w = self.warehouse
        with w._lock:
            if self.write:
                w._writing = False
            else:
                w._readers -= 1
            w._lock.notify_all()


@dataclass
class Job:
    """Long work run in the background (a payment run): who started it, where it is, how it ended."""

    id: str
    what: str
    user: str
    started: dt.datetime
    state: str = "running"
    finished: dt.datetime | None = None
    outcome: str = ""
    problems: list[str] = field(default_factory=list)
    done: int = 0  # of `total` steps, where the work counts them
    total: int | None = None

    def seconds(self) -> float:
        end = self.finished or dt.datetime.now(dt.timezone.utc)
        return round((end - self.started).total_seconds(), 1)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "what": self.what, "user": self.user, "state": self.state, "started": self.started.isoformat(),
                "seconds": self.seconds(), "done": self.done, "total": self.total, "outcome": self.outcome, "problems": self.problems}


def problem_records(error: ProblemsError) -> list[dict[str, Any]]:
    """Located problems as JSON: where (file, line or row, field), what, what was expected."""
    return [{"where": p.where(), "source": p.source, "line": p.line, "row": p.row, "field": p.field, "problem": p.message,
             "expected": p.expected} for p in error.problems]


def submission_record(s: Any) -> dict[str, Any]:
    return {"provider": s.provider, "month": month_label(s.month), "version": s.version, "rows": s.rows, "quantity": json_value(s.quantity),
            "cost": json_value(s.cost), "nil_return": s.nil_return, "submitted_at": s.submitted_at.isoformat(), "submitted_by": s.submitted_by,
            "content_hash": s.content_hash}


def challenge_record(c: Any) -> dict[str, Any]:
    return {"reference": c.reference, "contract": c.contract, "month": month_label(c.month), "component": c.component, "payer": c.payer,
            "payee": c.payee, "reason": c.reason, "note": c.note, "state": c.state, "raised_by": c.raised_by, "answer": c.answer,
            "amount": json_value(c.amount), "settled_month": month_label(c.settled_month) if c.settled_month else None}


def notice_record(n: Any) -> dict[str, Any]:
    return notice_rules.details(n) | {"title": notice_rules.LEVERS[n.lever].title}


def owed_record(o: notice_rules.Owed) -> dict[str, Any]:
    return {"reference": o.reference, "contract": o.contract, "what": o.what, "by": o.by, "when": json_value(o.when), "overdue": o.overdue}


def step_record(s: notice_rules.Step) -> dict[str, Any]:
    return {"step": s.name, "title": s.title, "by": s.by, "needs": list(s.needs)}


def create_app(root: Path) -> FastAPI:
    """The service for the workspace at `root`: its contracts are read once, at start."""
    workspace = Workspace.open(root)
    book = Book(workspace, workspace_contracts(workspace))
    records = open_records(workspace)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["pounds"] = lambda v: "" if v is None else format_money(Decimal(v))
    templates.env.filters["month"] = month_label

    app = FastAPI(title="carecontracts", summary="Statements each party to a health or care contract may see.",
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None,
                  swagger_ui_oauth2_redirect_url=None)
    warehouse = Warehouse()
    jobs: dict[str, Job] = {}
    year_months = [month_label(m) for m in workspace.year.months]
    app.state.workspace, app.state.book, app.state.records, app.state.jobs = workspace, book, records, jobs
    app.add_middleware(SessionMiddleware, secret_key=secret_of(workspace), session_cookie="carecontracts",
                       same_site="strict", https_only=False, max_age=8 * 3600)
    app.mount("/assets", StaticFiles(directory=str(HERE / "static")), name="assets")

    app.add_middleware(RequestLog)

    @app.exception_handler(SignInNeeded)
    async def to_sign_in(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/sign-in?next={quote(exc.next_path)}", status_code=303)

    # --- who is asking -------------------------------------------------------------------

    def api_viewer(request: Request) -> Viewer:
        """The bearer token's user, or 401."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        viewer = by_token(records, token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if viewer is None:
            raise HTTPException(status_code=401, detail="a live API token is needed: Authorization: Bearer <token> (see `carecontracts users token`)",
                                headers={"WWW-Authenticate": "Bearer"})
        request.state.user = viewer.user
        return viewer

    def session_viewer(request: Request) -> Viewer | None:
        """The user whose page session this is, unless it was ended (`users revoke`)."""
        name, since = request.session.get("user"), request.session.get("since")
        return by_name(records, name, dt.datetime.fromisoformat(since) if since else None) if name else None

    def page_viewer(request: Request) -> Viewer:
        """The signed-in user, or a redirect to the sign-in page."""
        viewer = session_viewer(request)
        if viewer is None:
            request.session.clear()
            raise SignInNeeded(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        request.state.user = viewer.user
        return viewer

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return token

    def check_csrf(request: Request, sent: str) -> None:
        expected = request.session.get("csrf")
        if not expected or not secrets.compare_digest(expected, sent):
            raise HTTPException(status_code=403, detail="the form has expired or did not come from this service: reload the page and try again")

    def visible_contract(viewer: Viewer, contract: str) -> str:
        """The viewer's part in a contract; 404 for one it is not party to, as for one that does not exist."""
        part = book.visible(viewer).get(contract)
        if part is None:
            raise HTTPException(status_code=404, detail=f"no contract {contract!r} that you are party to")
        return part

    def page(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"viewer": viewer, "csrf": csrf_token(request), **context}, status_code=status)

    # --- the API ---------------------------------------------------------------------------

    @app.get("/api/health", tags=["service"])
    def health() -> dict[str, Any]:
        """Answers when the service is ready: the workspace is open and its contracts read."""
        return {"status": "ready", "workspace": workspace.settings.name, "contracts": len(book.ids)}

    @app.get("/api/me", tags=["service"])
    def me(viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Who the token belongs to, and the contracts it may see."""
        return {"user": viewer.user, "party": viewer.party, "role": viewer.role, "contracts": book.visible(viewer)}

    @app.get("/api/contracts", tags=["statements"])
    def contracts(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, str]]:
        """The contracts the caller is party to, with its part in each."""
        return [{"contract": c, "part": part} for c, part in sorted(book.visible(viewer).items())]

    @app.get("/api/statements", tags=["statements"])
    def statements(month: str | None = Query(None, description="a month, e.g. 2025-11; all months if omitted"),
                   viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """The statement lines the caller may see: those of every contract it is party to."""
        with warehouse.reading():
            return line_records(book.lines(viewer, month_of(month)))

    @app.get("/api/contracts/{contract}/statements", tags=["statements"])
    def contract_statements(contract: str, month: str | None = Query(None, description="a month, e.g. 2025-11"),
                            viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """One contract's statement lines; 404 for a contract the caller is not party to."""
        visible_contract(viewer, contract)
        with warehouse.reading():
            return line_records(book.lines(viewer, month_of(month), contract))

    # --- the pages -------------------------------------------------------------------------

    @app.get("/sign-in", response_class=HTMLResponse, include_in_schema=False)
    def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
        return page(request, "sign_in.html", None, next=_safe_next(next))

    @app.post("/sign-in", include_in_schema=False)
    def sign_in_post(request: Request, user: str = Form(""), password: str = Form(""), csrf: str = Form(""),
                     next: str = Form("/")) -> Response:
        check_csrf(request, csrf)
        try:
            viewer = sign_in(records, user, password)
        except SignInRefused as refused:
            return page(request, "sign_in.html", None, status=401, error=str(refused), next=_safe_next(next), user=user)
        request.session.clear()
        request.session.update({"user": viewer.user, "since": dt.datetime.now(dt.timezone.utc).isoformat(), "csrf": secrets.token_urlsafe(32)})
        request.state.user = viewer.user
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/sign-out", include_in_schema=False)
    def sign_out(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/sign-in", status_code=303)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        with warehouse.reading():
            months, held, outlook = book.months(), stored_positions(book, viewer), stored_outlook(book, viewer)
        return page(request, "home.html", viewer, contracts=sorted(book.visible(viewer).items()), months=months,
                    positions=[] if held is None else [{k: json_value(v) for k, v in row.items()} for row in held.to_pylist()],
                    outlook=[] if outlook is None else outlook.to_pylist(), workspace_year=workspace.year.label)

    @app.get("/statements", response_class=HTMLResponse, include_in_schema=False)
    def statements_page(request: Request, month: str | None = None, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        with warehouse.reading():
            months = book.months()
            chosen = month_of(month) or _latest(months)
            lines = line_records(book.lines(viewer, chosen)) if chosen else []
        return page(request, "statements.html", viewer, month=chosen, months=months, lines=lines, contract=None,
                    total=sum((Decimal(line["amount"]) for line in lines), Decimal(0)))

    @app.get("/contracts/{contract}", response_class=HTMLResponse, include_in_schema=False)
    def contract_page(request: Request, contract: str, month: str | None = None, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        part = visible_contract(viewer, contract)
        chosen = month_of(month)
        with warehouse.reading():
            months, lines = book.months(), line_records(book.lines(viewer, chosen, contract))
        return page(request, "statements.html", viewer, month=chosen, months=months, lines=lines, contract=contract, part=part,
                    total=sum((Decimal(line["amount"]) for line in lines), Decimal(0)))


    # --- the monthly cycle: one function per action, shared by the API and the pages ------------

    def allowed(viewer: Viewer, action: str, contract: str | None = None) -> str | None:
        try:
            return check(book, viewer, action, contract)
        except Refused as refused:
            raise HTTPException(status_code=refused.status, detail=refused.detail) from None

    def visible_challenges(viewer: Viewer) -> list[Any]:
        visible = book.visible(viewer)
        return [c for c in challenge_rules.challenges(workspace) if c.contract in visible]

    def challenge_of(viewer: Viewer, reference: str) -> Any:
        found = [c for c in visible_challenges(viewer) if c.reference == reference]
        if not found:
            raise HTTPException(status_code=404, detail=f"no challenge {reference!r} on a contract you are party to")
        return found[0]

    def do_submit(viewer: Viewer, month: str, upload: UploadFile) -> list[dict[str, Any]]:
        allowed(viewer, "submit")
        when = month_of(month)
        if when is None:
            raise ProblemsError([Problem("month", "which month the file is for", expected="a month, e.g. 2025-11")])
        content = upload.file.read()
        with warehouse.writing():
            recorded = submit_upload(workspace, viewer.party or "", when, upload.filename or "submission.csv", content, who=viewer.user)
        return [submission_record(s) for s in recorded.submissions]

    def do_raise(viewer: Viewer, raised: "RaiseChallenge") -> Any:
        allowed(viewer, "challenge.raise", raised.contract)
        when = month_of(raised.month)
        if when is None:
            raise ProblemsError([Problem("month", "which month is challenged", expected="a month, e.g. 2025-11")])
        with warehouse.reading():
            # A payer challenges what it pays: a line challenge is to the user's own party's line.
            payer = raised.payer or (viewer.party if raised.component else None)
            return challenge_rules.raise_challenge(workspace, book.contracts, raised.contract, when, raised.reason, raised.activity or None,
                                                   raised.component or None, payer, raised.note or None, who=viewer.user)

    def do_answer(viewer: Viewer, reference: str, response: str) -> Any:
        allowed(viewer, "challenge.answer", challenge_of(viewer, reference).contract)
        if not response.strip():
            raise ProblemsError([Problem("response", "an answer says something", expected="the provider's answer to the challenge")])
        return challenge_rules.answer(workspace, reference, response, who=viewer.user)

    def do_decide(viewer: Viewer, reference: str, decision: str, amount: str | None) -> Any:
        challenge = challenge_of(viewer, reference)
        allowed(viewer, "challenge.decide", challenge.contract)
        if challenge.payer and viewer.party != challenge.payer:
            raise HTTPException(status_code=403, detail=f"{reference} challenges what {challenge.payer} pays: only {challenge.payer} decides it")
        if decision == "withdraw":
            return challenge_rules.withdraw(workspace, reference, who=viewer.user)
        if decision not in ("uphold", "reject"):
            raise ProblemsError([Problem("decision", f"{decision!r} is not a decision", value=decision, expected="uphold, reject or withdraw")])
        with warehouse.reading():
            return challenge_rules.decide(workspace, reference, decision == "uphold", exact_amount(amount, "amount") if amount else None,
                                          who=viewer.user)

    def visible_notices(viewer: Viewer) -> list[Any]:
        visible = book.visible(viewer)
        return [n for n in notice_rules.notices(workspace) if n.contract in visible]

    def notice_of(viewer: Viewer, reference: str) -> Any:
        found = [n for n in visible_notices(viewer) if n.reference == reference]
        if not found:
            raise HTTPException(status_code=404, detail=f"no notice {reference!r} on a contract you are party to")
        return found[0]

    def may_act(viewer: Viewer, contract: str, by: str) -> None:
        """Whether the viewer acts for the side whose step it is; of several commissioners,
        the co-ordinating one acts."""
        part = allowed(viewer, f"notice.{by}", contract)
        if part == "commissioner":
            acting = notice_rules.acting_commissioners(next(c for c in book.contracts if c.id == contract))
            if viewer.party not in acting:
                raise HTTPException(status_code=403, detail=f"in contract management on {contract} the co-ordinating commissioner "
                                                            f"({', '.join(sorted(acting))}) acts for the commissioners")

    def may_take(viewer: Viewer, contract: str, step: notice_rules.Step) -> bool:
        try:
            may_act(viewer, contract, step.by)
            return True
        except HTTPException:
            return False

    def doing_of(taken: "TakeStep | OpenNotice") -> notice_rules.Doing:
        return notice_rules.Doing(on=notice_rules.day_of(taken.on, "on"), note=taken.note or None, milestone=getattr(taken, "milestone", None) or None,
                                  due=notice_rules.day_of(getattr(taken, "due", None), "due"), percent=getattr(taken, "percent", None) or None,
                                  month=month_of(getattr(taken, "month", None)))

    def do_open_notice(viewer: Viewer, opened: "OpenNotice") -> Any:
        step = notice_rules.opening_step(opened.kind)
        may_act(viewer, opened.contract, step.by if step else notice_rules.EITHER)
        return notice_rules.open_notice(workspace, book.contracts, opened.kind, opened.contract, opened.about, doing_of(opened), who=viewer.user)

    def do_step(viewer: Viewer, reference: str, taken: "TakeStep") -> Any:
        notice = notice_of(viewer, reference)
        step = notice_rules.step_named(notice.lever, taken.step)
        may_act(viewer, notice.contract, step.by if step else notice_rules.EITHER)
        return notice_rules.take_step(workspace, reference, taken.step, doing_of(taken), who=viewer.user)[0]

    def owed_to(viewer: Viewer) -> list[notice_rules.Owed]:
        return notice_rules.due(workspace.settings.contract_management, visible_notices(viewer))

    def do_close(viewer: Viewer, month: str) -> list[dict[str, Any]]:
        allowed(viewer, "close")
        when = month_of(month)
        if when is None:
            raise ProblemsError([Problem("month", "which month to close", expected="a month, e.g. 2025-11")])
        with warehouse.reading():
            closes = close_through(workspace, when, who=viewer.user)
        return [{"month": month_label(c.month), "version": c.version, "lines": c.lines, "total": json_value(c.total), "hash": c.content_hash}
                for c in closes]

    def start_job(viewer: Viewer, what: str, work: Callable[[Job], str], total: int | None = None) -> Job:
        """Run `work` in the background (one job at a time: they write the warehouse); its
        outcome, or its problems, are the job's to show."""
        running = [j for j in jobs.values() if j.state == "running"]
        if running:
            if running[0].user == viewer.user and running[0].what == what:
                return running[0]
            raise HTTPException(status_code=409, detail=f"'{running[0].what}', started by {running[0].user}, is running: "
                                                        "one job at a time writes the warehouse; try again when it has ended")
        job = Job(id=uuid.uuid4().hex[:12], what=what, user=viewer.user, started=dt.datetime.now(dt.timezone.utc), total=total)
        jobs[job.id] = job

        def run() -> None:
            try:
                with warehouse.writing():
                    job.outcome = work(job)
                job.state = "done"
            except ProblemsError as error:
                job.problems, job.state = [str(p) for p in error.problems], "failed"
            except Exception as error:  # noqa: BLE001 - shown to the user who started it, and logged
                log.exception("job %s failed", job.id)
                job.problems, job.state = [f"{type(error).__name__}: {error}"], "failed"
            job.finished = dt.datetime.now(dt.timezone.utc)

        threading.Thread(target=run, name=f"job-{job.id}", daemon=True).start()
        return job

    def do_pay(viewer: Viewer) -> Job:
        allowed(viewer, "pay")

        def work(job: Job) -> str:
            from carecontracts.payments import run_payments

            result = run_payments(workspace, workspace.year.months)
            return f"{len(result.year_lines):,} lines priced, {format_money(pc.sum(result.lines['amount']).as_py() or Decimal(0))} in all"

        return start_job(viewer, f"pay {workspace.year.label}", work)

    def do_outlook(viewer: Viewer, runs: int) -> Job:
        allowed(viewer, "outlook")
        from carecontracts.scenarios.outlook import summary, work_out
        from carecontracts.scenarios.simulate import check_runs

        check_runs(runs)

        def work(job: Job) -> str:
            def advance(done: int) -> None:
                job.done += done

            return summary(work_out(workspace, runs, progress=advance))

        return start_job(viewer, f"outlook {workspace.year.label}: forecast and {runs:,} simulated years", work, total=runs)

    def job_of(viewer: Viewer, job_id: str) -> Job:
        job = jobs.get(job_id)
        if job is None or not (job.user == viewer.user or viewer.role == "admin"):
            raise HTTPException(status_code=404, detail=f"no job {job_id!r} of yours")
        return job

    @app.get("/api/positions", tags=["statements"])
    def positions(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """The caller's party's position over the months last priced: income, payments, net, costs, margin."""
        with warehouse.reading():
            held = stored_positions(book, viewer)
        return [] if held is None else [{k: json_value(v) for k, v in row.items()} for row in held.to_pylist()]

    @app.get("/api/submissions", tags=["cycle"])
    def submissions_list(month: str | None = None, viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """Submissions on record of the providers of the caller's contracts (every one for an auditor or admin)."""
        return [submission_record(s) for s in submissions(workspace, month_of(month)) if viewer.sees_everything or s.provider in book_providers(viewer)]

    @app.post("/api/submissions", tags=["cycle"], status_code=201)
    def submissions_post(month: str = Query(..., description="the month the activity is for, e.g. 2025-11"), file: UploadFile = File(...),
                         viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """A provider's activity for one month (CSV or Parquet, the activity columns): checked,
        loaded as its submission and recorded; 422 with every located problem if refused."""
        return {"submissions": do_submit(viewer, month, file)}

    @app.get("/api/challenges", tags=["cycle"])
    def challenges_list(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """Challenges on the caller's contracts."""
        return [challenge_record(c) for c in visible_challenges(viewer)]

    @app.post("/api/challenges", tags=["cycle"], status_code=201)
    def challenges_post(raised: RaiseChallenge, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Raise a challenge to activity rows or to a statement line (a commissioner, or a prime to its sub-contractor)."""
        return challenge_record(do_raise(viewer, raised))

    @app.post("/api/challenges/{reference}/answer", tags=["cycle"])
    def challenges_answer(reference: str, answered: AnswerChallenge, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """The provider answers a challenge to its activity or line."""
        return challenge_record(do_answer(viewer, reference, answered.response))

    @app.post("/api/challenges/{reference}/decide", tags=["cycle"])
    def challenges_decide(reference: str, decided: DecideChallenge, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """The payer upholds, rejects or withdraws a challenge."""
        return challenge_record(do_decide(viewer, reference, decided.decision, decided.amount))

    @app.post("/api/months/{month}/close", tags=["cycle"])
    def months_close(month: str, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Close the month (and every open month before it): its lines kept as issued."""
        return {"closed": do_close(viewer, month)}

    @app.post("/api/pay", tags=["cycle"], status_code=202)
    def pay(viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Price the year again in the background; follow it at /api/jobs/{id}."""
        return do_pay(viewer).as_json()

    @app.post("/api/outlook", tags=["statements"], status_code=202)
    def outlook_post(runs: int = Query(200, description="simulated years"), viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Forecast the year and simulate it in the background, as of the latest closed month; follow it at /api/jobs/{id}."""
        return do_outlook(viewer, runs).as_json()

    @app.get("/api/outlook", tags=["statements"])
    def outlook_get(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """The caller's party's outlook: forecast net position at outturn (and its range over the methods), and
        the simulated distribution of its position (a commissioner's: its payments, against its budget)."""
        with warehouse.reading():
            held = stored_outlook(book, viewer)
        return [] if held is None else [{k: json_value(v) for k, v in row.items()} for row in held.to_pylist()]

    @app.get("/api/jobs/{job_id}", tags=["cycle"])
    def job(job_id: str, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Where a background job is: running, done or failed, with its problems."""
        return job_of(viewer, job_id).as_json()

    @app.get("/api/notices", tags=["contract management"])
    def notices_list(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """Contract management notices (GC9, SC29) on the caller's contracts."""
        return [notice_record(n) for n in visible_notices(viewer)]

    @app.post("/api/notices", tags=["contract management"], status_code=201)
    def notices_post(opened: OpenNotice, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Open a notice: `cpn` or `aqn` (the co-ordinating commissioner), `iap-agreed`, `iap-set` or `early-warning`."""
        return notice_record(do_open_notice(viewer, opened))

    @app.get("/api/notices/{reference}", tags=["contract management"])
    def notice_get(reference: str, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """A notice, its steps so far and the steps that may follow, each with whose act it is."""
        notice = notice_of(viewer, reference)
        return notice_record(notice) | {
            "steps": [{"step": s.step, "state": s.state, "on": json_value(s.on), "note": s.note, "by": s.recorded_by}
                      for s in notice_rules.history(workspace, reference)],
            "next": [step_record(s) for s in notice_rules.next_steps(notice)]}

    @app.post("/api/notices/{reference}/steps", tags=["contract management"])
    def notice_step(reference: str, taken: TakeStep, viewer: Viewer = Depends(api_viewer)) -> dict[str, Any]:
        """Take the next step of a notice; a withholding or its remedy is priced by the next payment run."""
        return notice_record(do_step(viewer, reference, taken))

    @app.get("/api/due", tags=["contract management"])
    def due_list(viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """What is due under the notices on the caller's contracts, by whom and when, soonest first."""
        return [owed_record(o) for o in owed_to(viewer)]

    def book_providers(viewer: Viewer) -> set[str]:
        """The parties paid under the viewer's contracts: whose submissions it may see."""
        visible = book.visible(viewer)
        return {r.party for r in book.relations if r.contract in visible and r.relation in ("provider", "sub-contractor", "alliance member")}

    @app.get("/submissions", response_class=HTMLResponse, include_in_schema=False)
    def submissions_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        shown = [submission_record(s) for s in submissions(workspace) if viewer.sees_everything or s.provider in book_providers(viewer)]
        return page(request, "submissions.html", viewer, submissions=shown[::-1], months=year_months)

    @app.post("/submissions", response_class=HTMLResponse, include_in_schema=False)
    def submissions_upload(request: Request, month: str = Form(""), file: UploadFile = File(...), csrf: str = Form(""),
                           viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        check_csrf(request, csrf)
        recorded = do_submit(viewer, month, file)
        shown = [submission_record(s) for s in submissions(workspace) if s.provider in book_providers(viewer)]
        return page(request, "submissions.html", viewer, submissions=shown[::-1], recorded=recorded,
                    months=year_months)

    @app.get("/challenges", response_class=HTMLResponse, include_in_schema=False)
    def challenges_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        visible = book.visible(viewer)
        return page(request, "challenges.html", viewer, challenges=[challenge_record(c) for c in visible_challenges(viewer)][::-1],
                    parts=visible, months=year_months,
                    raisable=sorted(c for c, part in visible.items() if part in ("commissioner", "prime")),
                    reasons=[r.value for r in challenge_rules.Reason], jobs=[j for j in jobs.values() if j.user == viewer.user])

    @app.post("/challenges", include_in_schema=False)
    def challenges_raise(request: Request, contract: str = Form(""), month: str = Form(""), reason: str = Form(""), component: str = Form(""),
                         payer: str = Form(""), activity: str = Form(""), note: str = Form(""), csrf: str = Form(""),
                         viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        raised = do_raise(viewer, RaiseChallenge(contract=contract, month=month, reason=reason, component=component or None, payer=payer or None,
                                                 activity=activity.split() or None, note=note or None))
        return RedirectResponse(f"/challenges#{raised.reference}", status_code=303)

    @app.post("/challenges/{reference}/answer", include_in_schema=False)
    def challenges_answer_page(request: Request, reference: str, response: str = Form(""), csrf: str = Form(""),
                               viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        do_answer(viewer, reference, response)
        return RedirectResponse(f"/challenges#{reference}", status_code=303)

    @app.post("/challenges/{reference}/decide", include_in_schema=False)
    def challenges_decide_page(request: Request, reference: str, decision: str = Form(""), amount: str = Form(""), csrf: str = Form(""),
                               viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        do_decide(viewer, reference, decision, amount or None)
        return RedirectResponse(f"/challenges#{reference}", status_code=303)

    @app.get("/notices", response_class=HTMLResponse, include_in_schema=False)
    def notices_page(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        visible = book.visible(viewer)
        return page(request, "notices.html", viewer, owed=[owed_record(o) for o in owed_to(viewer)],
                    notices=[notice_record(n) for n in visible_notices(viewer)][::-1], kinds=notice_rules.openings(),
                    openable=sorted(c for c, part in visible.items() if part in ("commissioner", "provider", "alliance member")))

    @app.post("/notices", include_in_schema=False)
    def notices_open_page(request: Request, kind: str = Form(""), contract: str = Form(""), about: str = Form(""), on: str = Form(""),
                          note: str = Form(""), csrf: str = Form(""), viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        notice = do_open_notice(viewer, OpenNotice(kind=kind, contract=contract, about=about, on=on or None, note=note or None))
        return RedirectResponse(f"/notices/{notice.reference}", status_code=303)

    @app.get("/notices/{reference}", response_class=HTMLResponse, include_in_schema=False)
    def notice_page(request: Request, reference: str, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        notice = notice_of(viewer, reference)
        following = notice_rules.next_steps(notice)
        return page(request, "notice.html", viewer, notice=notice_record(notice), history=notice_rules.history(workspace, reference),
                    following=[step_record(s) | {"mine": may_take(viewer, notice.contract, s)} for s in following],
                    owed=[owed_record(o) for o in owed_to(viewer) if o.reference == reference], months=year_months)

    @app.post("/notices/{reference}/steps", include_in_schema=False)
    def notice_step_page(request: Request, reference: str, step: str = Form(""), on: str = Form(""), note: str = Form(""),
                         milestone: str = Form(""), due: str = Form(""), percent: str = Form(""), month: str = Form(""), csrf: str = Form(""),
                         viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        do_step(viewer, reference, TakeStep(step=step, on=on or None, note=note or None, milestone=milestone or None, due=due or None,
                                            percent=percent or None, month=month or None))
        return RedirectResponse(f"/notices/{reference}", status_code=303)

    @app.post("/close", response_class=HTMLResponse, include_in_schema=False)
    def close_page(request: Request, month: str = Form(""), csrf: str = Form(""), viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        check_csrf(request, csrf)
        closed = do_close(viewer, month)
        return page(request, "done.html", viewer, title="Month closed",
                    message=", ".join(f"{c['month']} (version {c['version']}, {c['lines']:,} lines, {format_money(Decimal(c['total']))})" for c in closed)
                    + " closed: their lines are kept as issued.")

    @app.post("/pay", include_in_schema=False)
    def pay_page(request: Request, csrf: str = Form(""), viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        return RedirectResponse(f"/jobs/{do_pay(viewer).id}", status_code=303)

    @app.post("/outlook", include_in_schema=False)
    def outlook_page(request: Request, runs: str = Form("200"), csrf: str = Form(""), viewer: Viewer = Depends(page_viewer)) -> Response:
        check_csrf(request, csrf)
        if not runs.strip().isdigit():
            raise ProblemsError([Problem("runs", f"{runs!r} is not a number of runs", value=runs, expected="a whole number, e.g. 200")])
        return RedirectResponse(f"/jobs/{do_outlook(viewer, int(runs)).id}", status_code=303)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse, include_in_schema=False)
    def job_page(request: Request, job_id: str, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        return page(request, "job.html", viewer, job=job_of(viewer, job_id))

    @app.get("/pack.xlsx", include_in_schema=False)
    def pack(request: Request, background: BackgroundTasks, viewer: Viewer = Depends(page_viewer)) -> Response:
        """The viewer's statement pack: its lines of the year and its position, as a workbook."""
        from carecontracts.report.export import write_statements

        with warehouse.reading():
            lines, held = book.lines(viewer), stored_positions(book, viewer)
        if lines is None:
            raise HTTPException(status_code=404, detail="no statements yet: the year has not been priced")
        folder = Path(tempfile.mkdtemp(prefix="pack-"))
        who = viewer.party or viewer.role
        path = folder / f"statements-{workspace.year.label}-{who}.xlsx"
        write_statements(lines, path, held.drop_columns(["from_month", "to_month"]) if held is not None else None, "xlsx", workspace.year,
                         f"Statements {workspace.year.label}: {who}")
        background.add_task(_remove, folder)
        return FileResponse(path, filename=path.name, media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

    @app.exception_handler(ProblemsError)
    async def problems(request: Request, exc: ProblemsError) -> Response:
        found = problem_records(exc)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"problems": found}, status_code=422)
        viewer = session_viewer(request)
        return page(request, "error.html", viewer, status=422, detail="Nothing was changed. Put these right and try again:",
                    problems=found, status_code=422)

    @app.exception_handler(duckdb.IOException)
    async def busy(request: Request, exc: duckdb.IOException) -> Response:
        detail = "the warehouse is in use by another program (a load or payment run?): try again in a minute"
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "60"})
        return page(request, "error.html", None, status=503, detail=detail, status_code=503)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/assets/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        viewer = session_viewer(request)
        return page(request, "error.html", viewer, status=exc.status_code, detail=exc.detail, status_code=exc.status_code)

    return app


class RaiseChallenge(BaseModel):
    """A challenge to activity rows (`activity`) or to a component's line (`component`, and `payer` where two pay it)."""

    model_config = ConfigDict(extra="forbid")
    contract: str
    month: str
    reason: str
    component: str | None = None
    payer: str | None = None
    activity: list[str] | None = None
    note: str | None = None


class AnswerChallenge(BaseModel):
    model_config = ConfigDict(extra="forbid")
    response: str


class DecideChallenge(BaseModel):
    """uphold (with `amount` for part of a line), reject or withdraw."""

    model_config = ConfigDict(extra="forbid")
    decision: str
    amount: str | None = None


class OpenNotice(BaseModel):
    """A notice opened on a contract: kind cpn, aqn, iap-agreed, iap-set or early-warning; `on` a day (YYYY-MM-DD, default today)."""

    model_config = ConfigDict(extra="forbid")
    kind: str
    contract: str
    about: str
    on: str | None = None
    note: str | None = None


class TakeStep(BaseModel):
    """A step of a notice: `milestone` and `due` for a plan, `percent` and `month` for a withholding, `month` for a remedy."""

    model_config = ConfigDict(extra="forbid")
    step: str
    on: str | None = None
    note: str | None = None
    milestone: str | None = None
    due: str | None = None
    percent: str | None = None
    month: str | None = None


def _remove(folder: Path) -> None:
    """A statement pack's folder, once the pack is sent."""
    for path in folder.iterdir():
        path.unlink()
    folder.rmdir()


def _latest(months: list[dt.date]) -> dt.date | None:
    return months[-1] if months else None


def _safe_next(target: str) -> str:
    """Only a path on this service: never send a signed-in user to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
