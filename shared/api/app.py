"""The findings HTTP API (FastAPI): findings, triage, runs, the detection catalog, health.

Every route is under `/api`: wrapped by `func.AsgiFunctionApp` the app sees the full path,
and served locally by uvicorn (`wiaudit serve`) it has the same URLs.

Authentication is decided by the caller of `create_api`, explicitly (`api_key` has no default):

- `api_key=None`: behind the Azure Functions host. The host checks the function key (auth level
  FUNCTION) before a request reaches this app, so the app checks nothing itself. The OpenAPI
  document declares the `x-functions-key` header.
- `api_key="..."`: served on its own (uvicorn). Every data endpoint requires the header
  `x-api-key` equal to the key (constant-time compare), else 401. Use `create_local_api`, which
  reads WIAUDIT_API_KEY and refuses to build an app without one: there are no anonymous data
  endpoints locally.

The key check and a body-size limit (64 KiB, 413) come first, in a pure ASGI middleware
(shared/api/guard.py): nothing reads or parses the body of a request that is refused.

`/api/health` is anonymous in both modes and returns no data. The OpenAPI document
(`/api/openapi.json`) holds no data and needs no key locally; in Azure it sits behind the function
key like the rest of the catch-all function. There is no Swagger UI: it would load its scripts from
a CDN, and in Azure its assets would need the function key; point any OpenAPI viewer at the document.

Triage (PATCH /api/findings/{id}) changes only what the body sends (a status, a comment or both) and appends
the change to the finding's `history`. GET and PATCH answer with an `ETag`; send it back in `If-Match` and the
change applies only to that version of the finding: 412 (with the current ETag) if someone changed it since.
Without `If-Match` (an automation that only adds a comment, say) the change applies to the finding as it is
then: it is still written conditionally on the version read, re-read on conflict, and both changes are kept in
the history; nothing is overwritten unseen. `If-Match: *` is the same as none (the finding exists or it is 404).
When findings go to Log Analytics, a triage's change is sent there once the response is made (a background task,
shared/export/after_triage.py), not only with the next audit.

Who triages (PATCH /api/findings/{id}) is decided by shared/api/identity.py: the signed-in person
when Entra sign-in (App Service authentication) is on in Azure, else the body's `by`.

Errors are RFC 9457 problem documents (shared/api/problems.py), never a 500 from input: 422 for
any input that does not validate (type, range, unknown field or enum value, unknown severity, a
forged, altered or foreign continuation token, since after until, a date out of range), 401 for a
missing key, 403 for a signed-in caller without the triage role, 404 for an unknown id, 413 for a
body over the limit, 503 when the findings store cannot be reached or is not configured.
All filters reach Table Storage as query parameters or hashed keys, never as filter text.
"""

from __future__ import annotations

import logging
import pathlib
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from azure.core.exceptions import AzureError
from fastapi import (
    APIRouter,
    BackgroundTasks,
    Depends,
    FastAPI,
    Header,
    HTTPException,
    Path,
    Query,
    Request,
    Response,
    Security,
)
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path

from shared.api.guard import API_KEY_HEADER, RequestGuard
from shared.api.identity import triage_actor
from shared.api.models import (
    Detection,
    DetectionPage,
    Explanation,
    Finding,
    FindingDetail,
    FindingPage,
    Health,
    Problem,
    Run,
    RunPage,
    TriageRequest,
    as_utc,
)
from shared.api.problems import (
    PROBLEM_JSON,
    InvalidInput,
    invalid,
    invalid_input_problem,
    problem,
    validation_problem,
)
from shared.filters import stored_detection, stored_principal
from shared.names import Named
from shared.settings import SettingsError, read_setting
from shared.severity import SEVERITIES, severity_rank
from shared.store.keys import InvalidContinuation
from shared.store.model import STATUSES, FindingChanged, Status, StoredFinding, Triage
from shared.web.pages import WebOptions, mount_web
from shared.web.paths import PREFIX as WEB_PREFIX
from shared.web.session import LocalSessions

if TYPE_CHECKING:
    from shared.catalog.model import Detection as CatalogDetection
    from shared.export.after_triage import SinkFactory
    from shared.logsource.base import LogSource
    from shared.posture.catalog import PostureCheck
    from shared.store.tables import TableFindingStore

log = logging.getLogger(__name__)

FUNCTION_KEY_HEADER = "x-functions-key"
PUBLIC_PATHS = frozenset({"/api/health", "/api/openapi.json"})
MIN_API_KEY_LENGTH = 16
MAX_LIMIT = 500
MAX_RUN_LIMIT = 100
MAX_FILTER_LENGTH = 1000
MAX_TOKEN_LENGTH = 4000
# Finding ids are hex fingerprints; anything outside the characters a table key may safely hold
# cannot be one, so it is a 404 without a round trip (and never reaches a key unescaped).
FINDING_ID = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
MAX_RUN_ID = 200

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or wrong API key (local serving only)"},
    413: {"model": Problem, "description": "The request body is larger than 64 KiB"},
    422: {"model": Problem, "description": "Input the API cannot use; `errors` names each field"},
    503: {"model": Problem, "description": "The findings store is unreachable or not configured"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "No such id"}}


ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([Tt ].*)?")


def _iso_8601_only(value: Any) -> Any:
    """Query datetimes must be ISO 8601 text; pydantic would otherwise also take numbers as Unix times."""
    if not isinstance(value, str) or not ISO_DATETIME.fullmatch(value):
        raise ValueError("expected an ISO 8601 date-time such as 2026-03-01T00:00:00Z (no zone means UTC)")
    return value


QueryDatetime = Annotated[datetime, BeforeValidator(_iso_8601_only)]


class ApiConfigurationError(SettingsError):
    """The API cannot be served as configured (e.g. locally without an API key)."""


def local_api_key(environ: Mapping[str, str] | None = None) -> str:
    """WIAUDIT_API_KEY for serving the API on its own; a clear error when it is missing or too short."""
    key = read_setting("WIAUDIT_API_KEY", environ)
    if not key:
        raise ApiConfigurationError(
            "WIAUDIT_API_KEY is not set: the local API refuses to serve findings without an API key. "
            "Set it to a random value, e.g. `export WIAUDIT_API_KEY=$(python -c \"import secrets; "
            "print(secrets.token_urlsafe(32))\")`, and send it in the x-api-key header.")
    if len(key) < MIN_API_KEY_LENGTH:
        raise ApiConfigurationError(f"WIAUDIT_API_KEY is too short: use at least {MIN_API_KEY_LENGTH} random "
                                    "characters")
    return key


def create_local_api(store_factory: Callable[[], TableFindingStore], environ: Mapping[str, str] | None = None,
                     **options: Any) -> FastAPI:
    """The API for `wiaudit serve` (uvicorn): requires x-api-key; raises ApiConfigurationError without a key."""
    return create_api(store_factory, api_key=local_api_key(environ), **options)


def _now() -> datetime:
    return datetime.now(UTC)


def _rule_names() -> list[Named]:
    from shared.catalog.loader import rule_names

    return rule_names()


def _load_catalog() -> Iterable[CatalogDetection]:
    from shared.catalog.loader import load_catalog

    return load_catalog()


def _suppressions_folder() -> pathlib.Path:
    from shared.suppressions.load import suppressions_folder

    return suppressions_folder()


def _load_checks() -> Iterable[PostureCheck]:
    from shared.posture.catalog import load_checks

    return load_checks()


class _Lazy:
    """A value built on first use, once, under a lock; a failed build is retried on the next request."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._value: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value


def _after_triage(store_factory: Callable[[], TableFindingStore],
                  sink: SinkFactory | None) -> Callable[[], None] | None:
    """What runs after a triage's response: its change delivered to Log Analytics (the sink built once)."""
    if sink is None:
        return None
    from shared.export.after_triage import deliver_after_triage

    lazy_sink = _Lazy(sink)
    return lambda: deliver_after_triage(store_factory(), lazy_sink.get)


def _problem(status: int, detail: str) -> HTTPException:
    return HTTPException(status_code=status, detail=detail)


@contextmanager
def _store_errors(not_found: str | None = None) -> Iterator[None]:
    """The store's refusals of input as 422 (a continuation token's naming that field), KeyError as 404."""
    try:
        yield
    except KeyError as error:
        raise _problem(404, not_found or f"not found: {error}") from None
    except InvalidContinuation as error:
        raise invalid("query", "continuation", str(error)) from None
    except ValueError as error:
        raise invalid("query", None, str(error)) from None
    except OverflowError as error:
        raise invalid("query", None, f"a value is out of range: {error}") from None


def _utc_param(name: str, value: datetime | None) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except OverflowError:
        raise invalid("query", name, "out of range once converted to UTC") from None


def _known_query(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters the operation does not declare (a typo such as `severty=high`
    would otherwise silently return everything). `code` is the function key as Azure passes it in the URL."""
    allowed = {*names, "code"}

    def check(request: Request) -> None:
        names = [name for name, _ in request.query_params.multi_items()]
        unknown = sorted(set(names) - allowed)
        if unknown:
            expected = ", ".join(sorted(allowed - {"code"})) or "none"
            raise InvalidInput([{"in": "query", "field": name,
                                 "detail": f"unknown query parameter; expected one of {expected}"}
                                for name in unknown])
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:  # FastAPI would silently keep the last value of a repeated filter
            raise InvalidInput([{"in": "query", "field": name, "detail": "give this query parameter once"}
                                for name in repeated])

    return check


ENTITY_TAG = re.compile(r'\s*(W/)?"([^"]*)"\s*')


def _etag(finding: StoredFinding) -> str:
    return f'"{finding.version}"'


def _if_match(header: str | None) -> frozenset[str] | None:
    """The versions an If-Match header accepts; None for no header or `*`. Weak tags never match (RFC 9110)."""
    if header is None or header.strip() == "*":
        return None
    parsed = [ENTITY_TAG.fullmatch(tag) for tag in header.split(",")]
    if not all(parsed):
        raise invalid("header", "If-Match", 'give ETags as GET returns them, e.g. "3f2a..." (quotes included)')
    return frozenset(match.group(2) for match in parsed if match and not match.group(1))


def _detection(rule: CatalogDetection | PostureCheck) -> Detection:
    scheduled = rule.kind == "Scheduled"
    return Detection(id=rule.id, name=rule.name, kind=rule.kind, severity=rule.severity,
                     description=rule.description, tactics=list(rule.tactics),
                     techniques=list(rule.relevantTechniques), tables=list(rule.tables),
                     frequency=rule.queryFrequency if scheduled else None,  # type: ignore[union-attr]
                     period=rule.queryPeriod if scheduled else None,  # type: ignore[union-attr]
                     parameters={name: parameter.model_dump() for name, parameter in rule.parameters.items()})


def _problem_media_type(document: dict[str, Any]) -> dict[str, Any]:
    """Error responses are documented as application/problem+json, as they are sent."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {})
                if status[0] in "45" and "application/json" in content:
                    content[PROBLEM_JSON] = content.pop("application/json")
    return document


def create_api(store_factory: Callable[[], TableFindingStore], *, api_key: str | None,
               clock: Callable[[], datetime] = _now,
               catalog: Callable[[], Iterable[CatalogDetection]] = _load_catalog,
               checks: Callable[[], Iterable[PostureCheck]] = _load_checks,
               easy_auth: bool = False, trail_source: Callable[[], LogSource] | None = None,
               export_sink: SinkFactory | None = None) -> FastAPI:
    """The findings API.

    `store_factory` is called on the first request that needs the store (never at build time, so
    importing and building the app touches no network); the store's tables are ensured then and the
    store is kept. `api_key`: required explicitly; None = behind the Functions host (it enforces the
    function key), a string = served on its own, every data endpoint requires `x-api-key`.
    `clock` stamps triage. `catalog` and `checks` give the detections and posture checks (loaded on
    first use). `easy_auth`: App Service authentication is on in front of this app (see
    shared/api/identity.py), so the signed-in person's headers are the platform's; never with an API key.
    `trail_source`: the logs the web pages read an identity's trail from (none: the pages show no trail).
    `export_sink`: where a triage's change goes at once (built on the first triage; it may give None: findings stay
    out of Log Analytics); none: triage changes wait in the store for the next audit to send them.

    The web pages (shared/web) are served beside the API under /api/ui: signed in with the API key locally,
    with Entra sign-in behind the Functions host.
    """
    if api_key is not None and len(api_key) < MIN_API_KEY_LENGTH:
        raise ApiConfigurationError(f"the API key must be at least {MIN_API_KEY_LENGTH} characters")
    behind_host = api_key is None
    if easy_auth and not behind_host:
        raise ApiConfigurationError("App Service authentication headers can only be trusted behind the Functions "
                                    "host, not when the API is served on its own")

    def build_store() -> TableFindingStore:
        try:
            store = store_factory()
        except SettingsError as error:
            raise _problem(503, f"the findings store is not configured: {error}") from None
        store.ensure_tables()
        return store

    lazy_store = _Lazy(build_store)
    lazy_catalog = _Lazy(lambda: [_detection(rule) for rule in (*catalog(), *checks())])
    lazy_names = _Lazy(_rule_names)
    after_triage = _after_triage(lazy_store.get, export_sink)

    def store() -> TableFindingStore:
        return lazy_store.get()

    # The key itself is checked by RequestGuard (locally) or the Functions host; these declare it in the document.
    if behind_host:
        scheme = APIKeyHeader(name=FUNCTION_KEY_HEADER, auto_error=False, scheme_name="functionKey",
                              description="Azure Functions function key (or `?code=`), checked by the Functions "
                                          "host before the request reaches the API")
    else:
        scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="apiKey",
                              description="The WIAUDIT_API_KEY the local server was started with")

    def declare_key(_: str | None = Security(scheme)) -> None:
        return None

    app = FastAPI(title="Workload Identity Auditor", version="1.0.0",
                  description="Findings about Microsoft Entra workload identities, their triage, the audit runs "
                              "and the detection catalog.",
                  openapi_url="/api/openapi.json", docs_url=None, redoc_url=None)
    app.add_middleware(RequestGuard, api_key=api_key, public_paths=PUBLIC_PATHS, browser_prefix=WEB_PREFIX)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _problem_media_type(get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(AzureError)
    def store_unavailable(request: Request, error: AzureError) -> JSONResponse:
        log.exception("findings store request failed: %s %s", request.method, request.url.path)
        return problem(503, "the findings store is unavailable; try again later")

    @app.exception_handler(RequestValidationError)
    def request_invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return validation_problem(error)

    @app.exception_handler(InvalidInput)
    def input_invalid(request: Request, error: InvalidInput) -> JSONResponse:
        return invalid_input_problem(error)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        if error.status_code == 400:  # FastAPI's only 400: a body it could not decode (e.g. not UTF-8)
            cause = f" ({error.__cause__})" if error.__cause__ else ""
            return invalid_input_problem(invalid("body", None, f"the body could not be read as JSON{cause}"))
        headers = dict(error.headers or {})
        if error.status_code == 405:  # Starlette lists only the first matching route's methods; list them all
            methods = sorted({method.upper() for template, operations in app.openapi()["paths"].items()
                              if compile_path(template)[0].match(request.url.path) for method in operations})
            headers["Allow"] = ", ".join(methods)
        return problem(error.status_code, str(error.detail), headers=headers)

    @app.get("/api/health", response_model=Health, tags=["health"], summary="Liveness (anonymous, no data)",
             dependencies=[Depends(_known_query())])
    def health() -> Health:
        return Health()

    api = APIRouter(prefix="/api", dependencies=[Depends(declare_key)], responses=ERRORS)

    @api.get("/findings", response_model=FindingPage, tags=["findings"], summary="Findings, newest first",
             dependencies=[Depends(_known_query("since", "until", "severity", "detection", "principal", "status",
                                                "limit", "continuation"))])
    def list_findings(
        since: QueryDatetime | None = Query(None, description="Last detected at or after (ISO 8601; no zone = UTC)"),
        until: QueryDatetime | None = Query(None, description="Last detected before (ISO 8601; no zone = UTC)"),
        severity: str | None = Query(None, max_length=20, description=f"Minimum severity: {', '.join(SEVERITIES)} "
                                                                       "(any case)"),
        detection: str | None = Query(None, max_length=MAX_FILTER_LENGTH,
                                      description="Detection or posture check: id or file name, or a unique prefix "
                                                  "of either"),
        principal: str | None = Query(None, max_length=MAX_FILTER_LENGTH,
                                      description="Workload identity: object id, app id, application object id or "
                                                  "display name (any case), or a unique prefix of one"),
        status: Status | None = Query(None, description=f"One of {', '.join(STATUSES)}"),
        limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Page size"),
        continuation: str | None = Query(None, max_length=MAX_TOKEN_LENGTH,
                                         description="The `continuation` of the previous page, with the same "
                                                     "filters"),
    ) -> FindingPage:
        since, until = _utc_param("since", since), _utc_param("until", until)
        if since and until and since > until:
            raise invalid("query", "since", "since must not be after until")
        if severity:
            try:
                severity_rank(severity)
            except ValueError as error:
                raise invalid("query", "severity", str(error)) from None
        try:
            detection = stored_detection(store(), detection, lazy_names.get()) if detection else None
        except KeyError as error:
            raise invalid("query", "detection", str(error)) from None
        try:
            principal = stored_principal(store(), principal) if principal else None
        except KeyError as error:
            raise invalid("query", "principal", str(error)) from None
        with _store_errors():
            items, token = store().query_findings(since=since, until=until, min_severity=severity or None,
                                                  detection=detection, principal=principal,
                                                  status=status, limit=limit, continuation=continuation or None)
        return FindingPage(items=[Finding.model_validate(item) for item in items], continuation=token)

    @api.get("/findings/{finding_id}", response_model=FindingDetail, responses=NOT_FOUND, tags=["findings"],
             summary="One finding with what to do about it (its ETag is what If-Match on PATCH expects)",
             dependencies=[Depends(_known_query())])
    def get_finding(response: Response, finding_id: str = Path(max_length=1000)) -> FindingDetail:
        from shared.explain import explain

        found = store().get_finding(finding_id) if FINDING_ID.fullmatch(finding_id) else None
        if found is None:
            raise _problem(404, f"no finding with id {finding_id!r}")
        response.headers["ETag"] = _etag(found)
        return FindingDetail(**Finding.model_validate(found).model_dump(),
                             explanation=Explanation.model_validate(explain(found)))

    @api.patch("/findings/{finding_id}", response_model=Finding, tags=["findings"],
               summary="Triage a finding: change its status and/or add a comment (kept in its history)",
               responses={**NOT_FOUND, 403: {"model": Problem, "description": "Signed in without the triage role"},
                          409: {"model": Problem, "description": "The finding kept changing"},
                          412: {"model": Problem, "description": "If-Match names a version that is no longer "
                                                                 "current (the response carries the current ETag)"}},
               dependencies=[Depends(_known_query())])
    def triage_finding(body: TriageRequest, request: Request, response: Response, background: BackgroundTasks,
                       finding_id: str = Path(max_length=1000),
                       if_match: str | None = Header(None, alias="If-Match", max_length=1000,
                                                     description="The ETag of the finding as last read: the change "
                                                                 "applies only to that version (412 otherwise)"),
                       ) -> Finding:
        change = Triage(by=triage_actor(request.headers, body.by, easy_auth=easy_auth), status=body.status,
                        comment=body.comment)
        expected = _if_match(if_match)
        if not FINDING_ID.fullmatch(finding_id):
            raise _problem(404, f"no finding with id {finding_id!r}")
        with _store_errors(not_found=f"no finding with id {finding_id!r}"):
            try:
                updated = store().triage(finding_id, change, as_utc(clock()), expected)
            except FindingChanged as changed:
                raise HTTPException(412, detail=f"the finding changed since you read it (now {changed.current.status}"
                                                "); GET it again and decide on what it says now",
                                    headers={"ETag": _etag(changed.current)}) from None
            except RuntimeError as error:
                raise _problem(409, str(error)) from None
        response.headers["ETag"] = _etag(updated)
        if after_triage is not None:
            background.add_task(after_triage)
        return Finding.model_validate(updated)

    @api.get("/runs", response_model=RunPage, tags=["runs"], summary="Audit runs, newest first",
             dependencies=[Depends(_known_query("limit", "continuation"))])
    def list_runs(limit: int = Query(20, ge=1, le=MAX_RUN_LIMIT, description="Page size"),
                  continuation: str | None = Query(None, max_length=MAX_TOKEN_LENGTH,
                                                   description="The `continuation` of the previous page"),
                  ) -> RunPage:
        with _store_errors():
            items, token = store().list_runs(limit=limit, continuation=continuation or None)
        return RunPage(items=[Run.model_validate(item) for item in items], continuation=token)

    @api.get("/runs/{run_id}", response_model=Run, responses=NOT_FOUND, tags=["runs"], summary="One audit run",
             dependencies=[Depends(_known_query())])
    def get_run(run_id: str = Path(max_length=1000)) -> Run:
        found = store().get_run(run_id) if len(run_id) <= MAX_RUN_ID else None
        if found is None:
            raise _problem(404, f"no run with id {run_id!r}")
        return Run.model_validate(found)

    @api.get("/detections", response_model=DetectionPage, tags=["detections"],
             summary="The detection catalog: KQL detections (kind Scheduled) and posture checks (kind Posture)",
             dependencies=[Depends(_known_query())])
    def list_detections() -> DetectionPage:
        return DetectionPage(items=lazy_catalog.get(), continuation=None)

    from shared.api.credentials import credentials_router  # imported here: it uses this module's helpers

    api.include_router(credentials_router(store))
    app.include_router(api)
    web = WebOptions(sessions=None if behind_host else LocalSessions(api_key), easy_auth=easy_auth,
                     suppressions_folder=None if behind_host else _suppressions_folder, trail_source=trail_source,
                     after_triage=after_triage)
    mount_web(app, store, web, lambda: as_utc(clock()), lazy_names.get)
    return app
