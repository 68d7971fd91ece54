"""The service: NHS.UK pages and a JSON API over one workspace, each party seeing exactly the
contracts it is party to. Thin: who may see what is `carecontracts.access`, the numbers are the
stored statements; this module only routes, authenticates and renders."""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import pyarrow as pa
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from carecontracts.access.parties import Book, Viewer
from carecontracts.access.users import SignInRefused, by_name, by_token, sign_in
from carecontracts.cycle.submissions import open_records
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
    app.state.workspace, app.state.book, app.state.records = workspace, book, records
    app.add_middleware(SessionMiddleware, secret_key=secret_of(workspace), session_cookie="carecontracts",
                       same_site="strict", https_only=False, max_age=8 * 3600)
    app.mount("/assets", StaticFiles(directory=str(HERE / "static")), name="assets")

    @app.middleware("http")
    async def log_request(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        who = getattr(request.state, "user", None) or "-"
        log.info("%s %s %s %s %.1fms", who, request.method, request.url.path, response.status_code, (time.perf_counter() - started) * 1000)
        return response

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

    def page_viewer(request: Request) -> Viewer:
        """The signed-in user, or a redirect to the sign-in page."""
        name = request.session.get("user")
        viewer = by_name(records, name) if name else None
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
        return line_records(book.lines(viewer, month_of(month)))

    @app.get("/api/contracts/{contract}/statements", tags=["statements"])
    def contract_statements(contract: str, month: str | None = Query(None, description="a month, e.g. 2025-11"),
                            viewer: Viewer = Depends(api_viewer)) -> list[dict[str, Any]]:
        """One contract's statement lines; 404 for a contract the caller is not party to."""
        visible_contract(viewer, contract)
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
        request.session.update({"user": viewer.user, "csrf": secrets.token_urlsafe(32)})
        request.state.user = viewer.user
        return RedirectResponse(_safe_next(next), status_code=303)

    @app.post("/sign-out", include_in_schema=False)
    def sign_out(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/sign-in", status_code=303)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        return page(request, "home.html", viewer, contracts=sorted(book.visible(viewer).items()), months=book.months())

    @app.get("/statements", response_class=HTMLResponse, include_in_schema=False)
    def statements_page(request: Request, month: str | None = None, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        chosen = month_of(month) or _latest(book.months())
        lines = line_records(book.lines(viewer, chosen)) if chosen else []
        return page(request, "statements.html", viewer, month=chosen, months=book.months(), lines=lines, contract=None,
                    total=sum((Decimal(line["amount"]) for line in lines), Decimal(0)))

    @app.get("/contracts/{contract}", response_class=HTMLResponse, include_in_schema=False)
    def contract_page(request: Request, contract: str, month: str | None = None, viewer: Viewer = Depends(page_viewer)) -> HTMLResponse:
        part = visible_contract(viewer, contract)
        chosen = month_of(month)
        lines = line_records(book.lines(viewer, chosen, contract))
        return page(request, "statements.html", viewer, month=chosen, months=book.months(), lines=lines, contract=contract, part=part,
                    total=sum((Decimal(line["amount"]) for line in lines), Decimal(0)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or request.url.path.startswith("/assets/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        name = request.session.get("user")
        viewer = by_name(records, name) if name else None
        return page(request, "error.html", viewer, status=exc.status_code, detail=exc.detail, status_code=exc.status_code)

    return app


def _latest(months: list[dt.date]) -> dt.date | None:
    return months[-1] if months else None


def _safe_next(target: str) -> str:
    """Only a path on this service: never send a signed-in user to another site."""
    return target if target.startswith("/") and not target.startswith("//") else "/"
