"""The web pages beside the API, under /api/ui: findings with filters, a finding with its trail and triage, the
credential inventory. Server-rendered HTML (Jinja2, autoescaped), no script, one stylesheet of our own.

They read and write through the same store and the same functions as the API and the CLI: the name resolver for
filters, `explain` for what a finding means, `trail` for the identity's activity, the store's triage (with the
version the page showed, so a decision is never applied to a finding someone changed meanwhile) and the
suppression writer. Sign-in and form checks: shared/web/session.py.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from azure.core.exceptions import AzureError
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.finding_facts import finding_facts, history_lines, principal_label
from shared.names import Named
from shared.store.keys import InvalidContinuation
from shared.store.model import STATUSES, FindingChanged, Triage, check_triage_status
from shared.text import duration, moment, plural, short_id, value_text
from shared.web.filters import read_credential_filters, read_filters
from shared.web.paths import is_web_page
from shared.web.session import (
    CSRF_COOKIE,
    CSRF_FIELD,
    PREFIX,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Forbidden,
    LocalSessions,
    NotSignedIn,
    Viewer,
    check_form,
    csrf_token,
    entra_viewer,
    set_cookie,
)

if TYPE_CHECKING:
    from jinja2 import Environment

    from shared.logsource.base import LogSource
    from shared.store.tables import TableFindingStore

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PAGE_SIZE = 50
TRAIL_MARGIN = timedelta(hours=1)
SUPPRESSION_DAYS = 90
STORE_RETRY_SECONDS = 60
ACTIONS = {"acknowledged": "Acknowledge", "resolved": "Resolve", "false_positive": "False positive", "new": "Reopen"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make the browser send Origin: null on our forms
    "Cache-Control": "no-store",
}
ENTRA_LOGIN = "/.auth/login/aad"



@cache
def _templates() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape  # on the first page, not at app start

    templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]),
                            trim_blocks=True, lstrip_blocks=True)
    templates.filters.update(moment=moment, value_text=value_text, short_id=short_id)
    templates.globals.update(plural=plural, prefix=PREFIX, csrf_field=CSRF_FIELD)
    return templates


@dataclass(frozen=True)
class WebOptions:
    """How the pages are served. `sessions`: sign-in with the API key (local); None: Entra sign-in (Azure).
    `suppressions_folder`: where a suppression is written (local); None: the page shows the YAML to commit.
    `trail_source`: the logs the identity's trail is read from; None: no trail on the page.
    `after_triage`: run once a triage's answer is made (its change sent to Log Analytics); None: nothing."""

    sessions: LocalSessions | None
    easy_auth: bool = False
    suppressions_folder: Callable[[], Path] | None = None
    trail_source: Callable[[], LogSource] | None = None
    after_triage: Callable[[], None] | None = None


def mount_web(app: FastAPI, store: Callable[[], TableFindingStore], options: WebOptions,
              clock: Callable[[], datetime], rule_names: Callable[[], Sequence[Named]]) -> None:
    """Add the pages and their sign-in handling to the API's app."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def viewer(request: Request) -> Viewer:
        if options.sessions is None:
            return entra_viewer(request.headers, easy_auth=options.easy_auth)
        return options.sessions.viewer(request.cookies.get(SESSION_COOKIE))

    @app.exception_handler(NotSignedIn)
    def sign_in_first(request: Request, error: NotSignedIn) -> Response:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if options.sessions is None:
            return RedirectResponse(f"{ENTRA_LOGIN}?{urlencode({'post_login_redirect_uri': here})}", 302)
        query = {"next": here} | ({"reason": error.reason} if error.reason else {})
        response = RedirectResponse(f"{PREFIX}/login?{urlencode(query)}", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    @app.exception_handler(Forbidden)
    def forbidden(request: Request, error: Forbidden) -> Response:
        return _page(request, "message.html", {"title": "Not allowed", "message": str(error)}, status=403)

    api_store_unavailable = app.exception_handlers[AzureError]

    @app.exception_handler(AzureError)
    def store_unavailable(request: Request, error: AzureError) -> Response:
        if not is_web_page(request.url.path):
            return api_store_unavailable(request, error)
        log.exception("findings store request failed: %s %s", request.method, request.url.path)
        return _store_unavailable_page(request, "The findings store cannot be reached just now.")

    api_http_error = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(StarletteHTTPException)
    async def store_not_configured(request: Request, error: StarletteHTTPException) -> Response:
        if error.status_code != 503 or not is_web_page(request.url.path):
            return await api_http_error(request, error)
        detail = str(error.detail)
        return _store_unavailable_page(request, f"{detail[:1].upper()}{detail[1:]}.")

    @router.get("/static/site.css")
    def stylesheet() -> Response:
        return Response((HERE / "static" / "site.css").read_text(encoding="utf-8"), media_type="text/css",
                        headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"})

    @router.get("")
    @router.get("/")
    def home() -> Response:
        return RedirectResponse(f"{PREFIX}/findings", 303)

    @router.get("/login")
    def login_page(request: Request, next: str = "", reason: str = "") -> Response:
        if options.sessions is None:
            return RedirectResponse(ENTRA_LOGIN, 302)
        return _page(request, "login.html", {"next": _local_path(next), "message": reason})

    @router.post("/login")
    async def login(request: Request) -> Response:
        if options.sessions is None:
            return RedirectResponse(ENTRA_LOGIN, 303)
        form = await request.form()
        check_form(request, form)
        name = str(form.get("name", "")).strip()[:256]
        target = _local_path(str(form.get("next", "")))
        address = request.client.host if request.client else "unknown"
        attempts = options.sessions.attempts
        if wait := attempts.seconds_to_wait(address):
            message = f"Too many wrong keys from this address: try again in {duration(timedelta(seconds=wait))}."
            return _page(request, "login.html", {"next": target, "message": message, "name": name}, status=429,
                         headers={"Retry-After": str(wait)})
        if not options.sessions.key_matches(str(form.get("key", ""))) or not name:
            message = "Give your name and the server's key (WIAUDIT_API_KEY)." if not name else "Wrong key."
            if name:
                attempts.failed(address)
            return _page(request, "login.html", {"next": target, "message": message, "name": name}, status=401)
        attempts.succeeded(address)
        response = RedirectResponse(target, 303)
        set_cookie(response, request, SESSION_COOKIE, options.sessions.issue(name), max_age=SESSION_SECONDS)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        check_form(request, await request.form())
        response = RedirectResponse(f"{PREFIX}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    @router.get("/findings")
    def findings_page(request: Request) -> Response:
        person = viewer(request)
        filters = read_filters(request.query_params, store(), rule_names())
        items, token = [], None
        if not filters.errors:
            try:
                items, token = store().query_findings(**filters.query, limit=PAGE_SIZE,
                                                      continuation=request.query_params.get("continuation") or None)
            except InvalidContinuation as error:
                filters.errors["next page"] = str(error)
        next_page = f"?{urlencode({**filters.given, 'continuation': token})}" if token else None
        return _page(request, "findings.html", {
            "viewer": person, "filters": filters, "findings": items, "next_page": next_page,
            "statuses": STATUSES, "severities": ("High", "Medium", "Low", "Informational"),
            "rules": rule_names(), "label": principal_label})

    @router.get("/findings/{finding_id}")
    def finding_page(request: Request, finding_id: str) -> Response:
        person = viewer(request)
        found = store().get_finding(finding_id)
        if found is None:
            return _page(request, "message.html", {"viewer": person, "title": "No such finding",
                                                   "message": f"There is no finding with id {finding_id}."},
                         status=404)
        return _finding(request, person, found)

    @router.post("/findings/{finding_id}/triage")
    async def triage(request: Request, finding_id: str) -> Response:
        from shared.api.identity import triage_actor

        person = viewer(request)
        form = await request.form()
        check_form(request, form)
        action, comment = str(form.get("action", "")), str(form.get("comment", "")).strip()
        try:
            status = None if action == "comment" else check_triage_status(action)
            change = Triage(by=triage_actor(request.headers, person.name, easy_auth=person.entra), status=status,
                            comment=comment or None)
        except ValidationError as error:
            return _finding_error(request, person, finding_id, error.errors()[0]["msg"].removeprefix("Value error, "))
        except ValueError as error:
            return _finding_error(request, person, finding_id, _first_line(error))
        try:
            store().triage(finding_id, change, clock(), frozenset({str(form.get("version", ""))}))
        except KeyError:
            return _finding_error(request, person, finding_id, "")
        except FindingChanged as changed:
            return _finding(request, person, changed.current, status=409, problem=(
                f"Someone changed this finding since you opened it (it is {changed.current.status} now): "
                "nothing was saved. Read it again and decide on what it says now."))
        return RedirectResponse(f"{PREFIX}/findings/{finding_id}?{urlencode({'saved': action})}", 303,
                                background=BackgroundTask(options.after_triage) if options.after_triage else None)

    @router.post("/findings/{finding_id}/suppress")
    async def suppress(request: Request, finding_id: str) -> Response:
        from shared.suppressions.load import SuppressionError
        from shared.suppressions.write import checked_suppression_text, write_suppression

        person = viewer(request)
        form = await request.form()
        check_form(request, form)
        found = store().get_finding(finding_id)
        if found is None:
            return _finding_error(request, person, finding_id, "")
        reason = str(form.get("reason", "")).strip()
        today = clock().date()
        try:
            until = date.fromisoformat(str(form.get("until", "")))
            if options.suppressions_folder is None:
                text = checked_suppression_text(found, rule_names(), reason, person.name, until, today)
                return _page(request, "suppression.html", {"viewer": person, "finding": found, "yaml": text})
            path = write_suppression(options.suppressions_folder(), found, rule_names(), reason, person.name,
                                     until, today)
        except (ValueError, SuppressionError) as error:
            return _finding(request, person, found, status=422, problem=f"No suppression written: {error}")
        return _page(request, "suppression.html", {"viewer": person, "finding": found, "path": str(path)})

    @router.get("/credentials")
    def credentials_page(request: Request) -> Response:
        person = viewer(request)
        filters = read_credential_filters(request.query_params)
        items, token, snapshot = [], None, store().inventory_snapshot()
        if not filters.errors:
            try:
                items, token = store().query_credentials(**filters.query, limit=PAGE_SIZE,
                                                         continuation=request.query_params.get("continuation") or None)
            except InvalidContinuation as error:
                filters.errors["next page"] = str(error)
        next_page = f"?{urlencode({**filters.given, 'continuation': token})}" if token else None
        return _page(request, "credentials.html", {"viewer": person, "filters": filters, "credentials": items,
                                                   "next_page": next_page,
                                                   "taken_at": snapshot[1] if snapshot else None})

    def _finding(request: Request, person: Viewer, found: Any, *, status: int = 200, problem: str = "") -> Response:
        from shared.explain import explain

        until_default = (clock().date() + timedelta(days=SUPPRESSION_DAYS)).isoformat()
        return _page(request, "finding.html", {
            "viewer": person, "finding": found, "facts": finding_facts(found), "history": history_lines(found),
            "explanation": explain(found), "trail": _trail(found), "actions": ACTIONS,
            "saved": request.query_params.get("saved", ""), "problem": problem, "until_default": until_default,
            "writes_suppressions": options.suppressions_folder is not None}, status=status)

    def _finding_error(request: Request, person: Viewer, finding_id: str, problem: str) -> Response:
        found = store().get_finding(finding_id)
        if found is None:
            return _page(request, "message.html", {"viewer": person, "title": "No such finding",
                                                   "message": f"There is no finding with id {finding_id}."},
                         status=404)
        return _finding(request, person, found, status=422, problem=problem)

    def _trail(found: Any) -> dict[str, Any]:
        """The identity's events from an hour before the finding's window to an hour after it."""
        if options.trail_source is None:
            return {"events": [], "note": "No logs to read the trail from: start `wiaudit serve --logs FOLDER` "
                                          "to see the identity's activity around the finding."}
        from shared.trail import trail

        context = found.context or {}
        ids = list(dict.fromkeys(i for i in (found.principal_id, context.get("app_id"),
                                             context.get("application_object_id")) if i))
        since, until = found.window_start - TRAIL_MARGIN, found.window_end + TRAIL_MARGIN
        try:
            events = trail(options.trail_source(), ids, since, until)
        except Exception as error:  # the page still serves the finding when the logs cannot be read
            log.exception("trail of %s failed", found.principal_id)
            return {"events": [], "note": f"The trail could not be read: {_first_line(error)}"}
        return {"events": events, "since": since, "until": until,
                "note": "" if events else f"No activity of this identity from {moment(since)} to {moment(until)}."}

    app.include_router(router)


def _page(request: Request, template: str, context: dict[str, Any], status: int = 200,
          headers: dict[str, str] | None = None) -> HTMLResponse:
    token = csrf_token(request)
    html = _templates().get_template(template).render(**context, csrf=token, request=request)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS | (headers or {}))
    if request.cookies.get(CSRF_COOKIE) != token:
        set_cookie(response, request, CSRF_COOKIE, token)
    return response


def _store_unavailable_page(request: Request, reason: str) -> HTMLResponse:
    message = f"{reason} Try again in a minute."
    return _page(request, "message.html", {"title": "Findings unavailable", "message": message}, status=503,
                 headers={"Retry-After": str(STORE_RETRY_SECONDS)})


def _local_path(target: str) -> str:
    """Only a path on these pages as a redirect target (never another site)."""
    return target if target.startswith(PREFIX + "/") and "//" not in target and "\\" not in target \
        else f"{PREFIX}/findings"


def _first_line(error: Exception) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
