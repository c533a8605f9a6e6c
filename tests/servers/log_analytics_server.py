"""The Log Analytics query API, answered by the embedded KQL engine over a LogDatabase.

`POST /v1/workspaces/{workspaceId}/query` with `{"query", "timespan", "workspaces"}` and a bearer token; the answer is
`{"tables": [{"name": "PrimaryResult", "columns": [{"name", "type"}], "rows": [[...]]}]}` as the real service writes
it: datetimes as ISO 8601 with `Z`, dynamic values as JSON text, timespans as `[d.]hh:mm:ss[.fffffff]`.

Timespan: the service applies the request's timespan to every table in addition to the query's own filters. The
emulation runs the query in a scratch database whose tables are views of the loaded ones restricted to
`start <= TimeGenerated < end`, so a datatable() or a `let` over a table sees exactly what the service would.

Faults, queued with `fail_next(kind, times)` and answered before the query runs:
- `"throttled"`: 429 with `Retry-After` (seconds) and a ThrottledError body;
- `500`, `502`, `503`, `504`: the service's error body with that status;
- `"partial"`: HTTP 200 with the (possibly cut) tables and an `"error"` beside them, as the service answers a
  partial result.
Independent of the queue, `row_limit` / `size_limit` emulate the service's result cap (500,000 rows / 64 MB):
a larger result comes back cut, with the PartialError the service sends (E_QUERY_RESULT_SET_TOO_LARGE).

Every request is recorded in `requests` (method, path, headers, parsed body, time of arrival).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb_kql

from shared.logsource.database import LogDatabase

from ._http import LocalServer, QuietHandler

ROW_LIMIT = 500_000
SIZE_LIMIT = 64 * 1024 * 1024
_QUERY_PATH = re.compile(r"^/v1/workspaces/([^/]+)/query/?$")
_DURATION = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() on arrival


@dataclass(frozen=True)
class Fault:
    kind: str | int  # "throttled", "partial" or an HTTP status
    retry_after: float | None = None


class LogAnalyticsServer(LocalServer):
    """Answers queries over `database` (or the logs under `folder`).

    `workspace_id`: the only workspace it knows (None: any). `token_validator`: decides whether a bearer token is
    good (e.g. a ManagedIdentityTokenServer's `is_valid`); without one any non-empty bearer token is accepted.
    `now`: the clock for now()/ago() and for a timespan given as a bare duration (default: the wall clock).
    """

    def __init__(self, database: LogDatabase | None = None, *, folder: Path | None = None,
                 workspace_id: str | None = None, token_validator: Any = None, now: datetime | None = None,
                 row_limit: int = ROW_LIMIT, size_limit: int = SIZE_LIMIT) -> None:
        super().__init__()
        if database is None:
            database = LogDatabase()
            if folder is not None:
                database.load_folder(folder)
        self.database = database
        self.workspace_id = workspace_id
        self.token_validator = token_validator
        self.now = now
        self.row_limit = row_limit
        self.size_limit = size_limit
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._scratch = itertools.count(1)

    # -- test controls ---------------------------------------------------------------------------------------------

    def fail_next(self, kind: str | int, times: int = 1, *, retry_after: float | None = None) -> None:
        """Answer the next `times` queries with a fault (see the module docstring), then recover."""
        if kind not in ("throttled", "partial") and not (isinstance(kind, int) and 400 <= kind <= 599):
            raise ValueError(f"unknown fault {kind!r}")
        if kind == "throttled" and retry_after is None:
            retry_after = 1
        with self.lock:
            self._faults.extend(Fault(kind, retry_after) for _ in range(times))

    def reset(self) -> None:
        with self.lock:
            self._faults.clear()
            self.requests.clear()

    @property
    def query_requests(self) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == "POST"]

    @property
    def request_count(self) -> int:
        return len(self.query_requests)

    def _next_fault(self) -> Fault | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None

    # -- the query -------------------------------------------------------------------------------------------------

    def answer(self, kql: str, start: datetime | None, end: datetime | None) -> dict[str, Any]:
        """The response document for `kql` over the timespan (None: the whole database)."""
        with self.lock:
            cursor = self.database.connection.cursor()
            try:
                relation = self._run(cursor, kql, start, end)
                table = _table(relation)
            finally:
                cursor.close()
        return {"tables": [table]}

    def _run(self, cursor: Any, kql: str, start: datetime | None, end: datetime | None) -> Any:
        base = cursor.execute("SELECT current_database()").fetchone()[0]
        name = f"timespan_{next(self._scratch)}"
        cursor.execute(f"ATTACH ':memory:' AS {name}")
        try:
            for table, has_time in _tables(cursor, base):
                where = ""
                if has_time and start is not None and end is not None:
                    where = (f' WHERE "TimeGenerated" >= {_sql_timestamp(start)}'
                             f' AND "TimeGenerated" < {_sql_timestamp(end)}')
                cursor.execute(f'CREATE VIEW {name}.main."{table}" AS SELECT * FROM "{base}".main."{table}"{where}')
            cursor.execute(f"USE {name}")
            relation = duckdb_kql.query(cursor, kql, query_now=self.now or datetime.now(UTC))
            # materialise before the scratch database goes away
            return _Materialised(relation.columns, [str(kind) for kind in relation.types], relation.fetchall())
        finally:
            cursor.execute(f'USE "{base}"')
            cursor.execute(f"DETACH {name}")

    def parse_timespan(self, text: str | None) -> tuple[datetime | None, datetime | None]:
        """ISO 8601 `start/end`, `start/duration`, `duration/end` or a bare duration (ending now)."""
        if not text:
            return None, None
        if "/" in text:
            first, second = text.split("/", 1)
            if first.startswith("P"):
                end = _instant(second)
                return end - _duration(first), end
            start = _instant(first)
            return start, (start + _duration(second)) if second.startswith("P") else _instant(second)
        end = self.now or datetime.now(UTC)
        return end - _duration(text), end


@dataclass(frozen=True)
class _Materialised:
    columns: list[str]
    types: list[str]
    rows: list[tuple[Any, ...]]


class QueryHandler(QuietHandler):
    def do_GET(self) -> None:
        self._record(None)
        self.send_json(405, _error("MethodNotAllowed", "use POST"))

    def do_POST(self) -> None:
        owner: LogAnalyticsServer = self.server.owner  # type: ignore[attr-defined]
        raw = self.read_body()
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self._record(body)
        match = _QUERY_PATH.match(self.path.split("?", 1)[0])
        if not match:
            self.send_json(404, _error("PathNotFoundError", f"The requested path does not exist: {self.path}"))
            return
        token = _bearer(self.headers.get("Authorization"))
        if not token or (owner.token_validator is not None and not owner.token_validator(token)):
            self.send_json(401, _error("AuthorizationRequiredError", "Valid authentication was not provided"),
                           {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                                                'common/oauth2/authorize", error="invalid_token"'})
            return
        if owner.workspace_id is not None and match.group(1) != owner.workspace_id:
            self.send_json(404, _error("WorkspaceNotFoundError", f"Workspace {match.group(1)} not found"))
            return
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            self.send_json(400, _error("BadArgumentError", "The request had some invalid properties",
                                       "QueryValidationError", "A query is required"))
            return
        fault = owner._next_fault()
        if fault is not None and fault.kind != "partial":
            self._send_fault(fault)
            return
        try:
            start, end = owner.parse_timespan(body.get("timespan"))
        except ValueError as error:
            self.send_json(400, _error("BadArgumentError", "The request had some invalid properties",
                                       "InvalidTimespan", str(error)))
            return
        try:
            document = owner.answer(body["query"], start, end)
        except Exception as error:  # the engine's parse and bind errors: the service says 400 BadArgumentError
            self.send_json(400, _error("BadArgumentError", "The request had some invalid properties",
                                       "SemanticError", f"{type(error).__name__}: {error}"))
            return
        self.send_json(200, _limit(document, owner, forced=fault is not None))

    def _record(self, body: Any) -> None:
        owner: LogAnalyticsServer = self.server.owner  # type: ignore[attr-defined]
        with owner.lock:
            owner.requests.append(RecordedRequest(self.command, self.path, dict(self.headers.items()), body,
                                                  time.monotonic()))

    def _send_fault(self, fault: Fault) -> None:
        if fault.kind == "throttled":
            self.send_json(429, _error("ThrottledError", "Your request was throttled. Try again later."),
                           {"Retry-After": _seconds(fault.retry_after or 1)})
            return
        status = int(fault.kind)
        codes = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailableError", 504: "GatewayTimeout"}
        headers = {"Retry-After": _seconds(fault.retry_after)} if fault.retry_after is not None else None
        self.send_json(status, _error(codes.get(status, "ServiceError"), f"The service answered {status}"), headers)


LogAnalyticsServer.handler = QueryHandler


def _bearer(header: str | None) -> str | None:
    if not header or not header.lower().startswith("bearer "):
        return None
    return header[7:].strip() or None


def _seconds(value: float | None) -> str:
    return str(math.ceil(value or 0))


def _error(code: str, message: str, inner_code: str | None = None, inner_message: str | None = None) -> dict:
    error: dict[str, Any] = {"message": message, "code": code, "correlationId": str(uuid.uuid4())}
    if inner_code:
        error["innererror"] = {"code": inner_code, "message": inner_message or message}
    return {"error": error}


def _limit(document: dict[str, Any], owner: LogAnalyticsServer, forced: bool) -> dict[str, Any]:
    """Cut a result over the row or size cap and add the PartialError the service sends with it."""
    table = document["tables"][0]
    reason = None
    if len(table["rows"]) > owner.row_limit:
        table["rows"] = table["rows"][:owner.row_limit]
        reason = f"Query result set has exceeded the internal record count limit {owner.row_limit}"
    elif len(json.dumps(table["rows"], separators=(",", ":"))) > owner.size_limit:
        kept, size = [], 2
        for row in table["rows"]:
            size += len(json.dumps(row, separators=(",", ":"))) + 1
            if size > owner.size_limit:
                break
            kept.append(row)
        table["rows"] = kept
        reason = f"Query result set has exceeded the internal data size limit {owner.size_limit}"
    elif forced:
        table["rows"] = table["rows"][: len(table["rows"]) // 2]
        reason = "Query execution has exceeded the allowed limits (80DA0003): the request was canceled"
    if reason is None:
        return document
    document["error"] = {
        "code": "PartialError",
        "message": "There were some errors when processing your query.",
        "details": [{
            "code": "EngineError",
            "message": "Something went wrong processing your query on the server.",
            "innererror": {"code": "-2133196797",
                           "message": f"{reason} (E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)",
                           "severity": 2, "severityName": "Error"},
        }],
    }
    return document


def _tables(cursor: Any, catalog: str) -> list[tuple[str, bool]]:
    rows = cursor.execute(
        "SELECT table_name, bool_or(column_name = 'TimeGenerated') FROM information_schema.columns "
        "WHERE table_catalog = ? AND table_schema = 'main' GROUP BY table_name ORDER BY table_name", [catalog]
    ).fetchall()
    return [(name, bool(has_time)) for name, has_time in rows]


def _sql_timestamp(moment: datetime) -> str:
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return f"TIMESTAMP '{moment.isoformat(sep=' ', timespec='microseconds')}'"


def _instant(text: str) -> datetime:
    text = re.sub(r"(\.\d{6})\d+", r"\1", text.strip()).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


# -- the service's wire format ------------------------------------------------------------------------------------

def _la_type(duckdb_type: str) -> str:
    kind = duckdb_type.upper()
    if kind == "JSON" or kind.endswith("[]") or kind.startswith(("STRUCT", "MAP", "LIST", "UNION")):
        return "dynamic"
    if kind.startswith("TIMESTAMP") or kind == "DATE":
        return "datetime"
    if kind in ("BIGINT", "HUGEINT", "UBIGINT", "UINTEGER"):
        return "long"
    if kind in ("INTEGER", "SMALLINT", "TINYINT", "USMALLINT", "UTINYINT"):
        return "int"
    if kind in ("DOUBLE", "FLOAT", "REAL"):
        return "real"
    if kind.startswith("DECIMAL"):
        return "decimal"
    if kind == "BOOLEAN":
        return "bool"
    if kind == "UUID":
        return "guid"
    if kind == "INTERVAL":
        return "timespan"
    return "string"


def _table(relation: _Materialised) -> dict[str, Any]:
    types = [_la_type(kind) for kind in relation.types]
    return {
        "name": "PrimaryResult",
        "columns": [{"name": name, "type": kind} for name, kind in zip(relation.columns, types, strict=True)],
        "rows": [[_wire(value, kind) for value, kind in zip(row, types, strict=True)] for row in relation.rows],
    }


def _wire(value: Any, la_type: str) -> Any:
    if value is None:
        return None
    if la_type == "datetime":
        return format_datetime(value)
    if la_type == "dynamic":
        return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), default=str)
    if la_type == "timespan":
        return format_timespan(value)
    if la_type == "real":
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if la_type == "decimal":
        return str(Decimal(value))
    if la_type in ("guid", "string"):
        return str(value)
    return value


def format_datetime(value: datetime) -> str:
    """2026-03-10T01:00:00Z, with the fraction (up to 7 digits, trailing zeros dropped) when there is one."""
    if not isinstance(value, datetime):  # a DATE
        value = datetime(value.year, value.month, value.day)
    value = value.astimezone(UTC) if value.tzinfo else value
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += "." + f"{value.microsecond:06d}0".rstrip("0")
    return text + "Z"


def format_timespan(value: timedelta) -> str:
    """Kusto's timespan text: [-][d.]hh:mm:ss[.fffffff]."""
    sign = "-" if value < timedelta(0) else ""
    value = abs(value)
    days, seconds = value.days, value.seconds
    text = f"{days}." if days else ""
    text += f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if value.microseconds:
        text += f".{value.microseconds:06d}0"
    return sign + text
