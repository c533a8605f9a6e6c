"""The production LogSource: KQL run by Log Analytics through `azure.monitor.query.LogsQueryClient`.

Time window. `query(kql, start, end)` sends `timespan=(start, end)`; the caller has already moved `start` back by the
detection's lookback, so the service sees every row the query reads. The service applies the timespan to every
table in addition to the query's own `WindowStart`/`WindowEnd` filters.

Rows. The first result table becomes a list of dicts with the same Python values the embedded engine gives:
datetimes tz-aware UTC, `dynamic` values parsed from the JSON text the REST API sends, timespans as timedelta, guids
as str, so rows from both sources compare equal.

Incomplete results are never accepted. The service answers a result over its cap (500,000 rows / ~64 MB) or a
query cut short (e.g. by its time limit) with a partial result: some rows and a PartialError. A result of exactly
the row cap is treated the same way. What happens then depends on whether the time range can be split:

- Splitting `[start, end)` in halves and concatenating the answers gives the same rows as the whole range only if
  every output row comes from one input row: filters, projections, extends, parse, mv-expand over tables. It is
  wrong for anything that combines rows: `summarize` and `count` would give one group per half with half counts,
  `dcount`/`make_set`/`arg_max` cannot be re-combined, `join`/`lookup` would lose pairs whose sides fall in
  different halves, a lookback baseline would see half its history, and `take`/`top`/`sort` would be per half.
- So by default (`splittable=None`) a range is split only when `row_wise(kql)` proves the query row-wise with a
  conservative check: every pipe operator in a short allow-list (where, project*, extend, parse*, mv-expand,
  union), no subquery, and none of toscalar(), materialize(), datatable, range, print, externaldata, evaluate,
  invoke, fork, facet. Anything else fails with a LogQueryError that names the reason, the range and why it was
  not split. Every detection in the catalog aggregates or joins, so for them an over-cap result is an error that
  asks for a narrower query or a shorter period, never a silently different answer.
- `splittable=False` never splits; `splittable=True` is the caller's word that the query is row-wise (the check
  is skipped).
- Halves are split again down to `min_slice`; a slice that is still incomplete there raises LogQueryError with the
  service's own message. Halves are half-open (`[start, mid)`, `[mid, end)`): an event stamped exactly at a split
  instant is counted once as long as the service treats the timespan end as exclusive.

Transient failures. Throttling (429, honouring `Retry-After`) and 408/5xx are retried by azure-core's RetryPolicy,
configured through the client (`retry_total`, `retry_backoff_factor`, `retry_backoff_max`); the query API is a
read-only POST, so POST is added to the retried methods for each call. A `Retry-After` longer than
`retry_backoff_max` is cut to it (the service has asked for 75 s): a throttled audit waits at most
`retry_total` x `retry_backoff_max` (4 min by default) per query, far inside the audit lease it renews at
every window, so it never outlives the lease and overlaps the next run. Timeouts: `timeout` is the server timeout
of one query (the `Prefer: wait=` header, at most 600 s); the connection timeout is `connection_timeout` and the
read timeout is the server timeout plus a margin. When retries are exhausted, or the query itself is rejected,
LogQueryError carries the status and the service's message.

Transport security. The endpoint must be https, so the bearer token only travels over TLS. A plain-http endpoint is
accepted only on a loopback address (a local stand-in of the service in tests); only then is the SDK's bearer
policy told `enforce_https=False`. The credential is whatever TokenCredential the caller passes (in Azure, the
Function's managed identity).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import RetryPolicy
from azure.core.pipeline.transport import HttpTransport
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult, LogsTable

from shared.logsource.base import IncompleteResult, LogQueryError, Row
from shared.logsource.values import parse_datetime
from shared.settings import SettingsError, read_setting, require_setting

DEFAULT_ENDPOINT = "https://api.loganalytics.io"
SERVICE_ROW_LIMIT = 500_000
MAX_SERVER_TIMEOUT = 600  # seconds; the service's upper bound
READ_TIMEOUT_MARGIN = 30  # seconds beyond the server timeout before the client gives up reading
_RETRIED_METHODS = frozenset({"HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST"})


class CappedRetryPolicy(RetryPolicy):
    """azure-core's RetryPolicy, except that no wait, not even one the service asks for, exceeds the maximum."""

    def get_retry_after(self, response: Any) -> float | None:
        asked = super().get_retry_after(response)
        return None if asked is None else min(asked, self.backoff_max)


class LogAnalyticsSource:
    """Answers LogSource queries from one Log Analytics workspace.

    `timeout`: server timeout of one query in seconds (1..600). `min_slice`: the smallest time range an incomplete
    result is split down to. `client`: a ready LogsQueryClient (its own endpoint, retry and transport settings
    apply; `endpoint` then only says whether it is a loopback http stand-in). `transport`: the HTTP transport of
    the client built here (azure-core's default when None).
    """

    def __init__(self, workspace_id: str, credential: TokenCredential, endpoint: str = DEFAULT_ENDPOINT,
                 timeout: int = MAX_SERVER_TIMEOUT, min_slice: timedelta = timedelta(minutes=15),
                 client: LogsQueryClient | None = None, *, retry_total: int = 4, retry_backoff_factor: float = 1.0,
                 retry_backoff_max: float = 60, connection_timeout: float = 30,
                 transport: HttpTransport | None = None) -> None:
        if not workspace_id:
            raise ValueError("a workspace id is required")
        if not 1 <= int(timeout) <= MAX_SERVER_TIMEOUT:
            raise ValueError(f"the server timeout must be 1 to {MAX_SERVER_TIMEOUT} seconds, not {timeout}")
        if min_slice <= timedelta(0):
            raise ValueError("min_slice must be positive")
        self.workspace_id = workspace_id
        self.endpoint = endpoint.rstrip("/")
        self.timeout = int(timeout)
        self.min_slice = min_slice
        self._plain_http = check_endpoint(self.endpoint, "the Log Analytics endpoint")
        self.client = client or LogsQueryClient(
            credential,
            endpoint=self.endpoint,
            retry_policy=CappedRetryPolicy(retry_total=retry_total, retry_backoff_factor=retry_backoff_factor,
                                           retry_backoff_max=retry_backoff_max),
            connection_timeout=connection_timeout,
            read_timeout=self.timeout + READ_TIMEOUT_MARGIN,
            **({"transport": transport} if transport else {}),
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> LogAnalyticsSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, kql: str, start: datetime, end: datetime, *, splittable: bool | None = None) -> list[Row]:
        """Rows of `kql` over `[start, end)` (lookback included); LogQueryError when they cannot all be had."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            raise ValueError(f"the time range must end after it starts ({start.isoformat()} .. {end.isoformat()})")
        if splittable is None:
            splittable, why_not = row_wise(kql)
        else:
            why_not = "the caller said it must not be split"
        return self._query_range(kql, start, end, splittable, why_not)

    def _query_range(self, kql: str, start: datetime, end: datetime, splittable: bool, why_not: str) -> list[Row]:
        rows, incomplete = self._query_once(kql, start, end)
        if incomplete is None:
            return rows
        span = f"{start.isoformat()} .. {end.isoformat()}"
        if not splittable:
            raise IncompleteResult(f"Log Analytics returned an incomplete result for {span}: {incomplete}. The time "
                                   f"range was not split here because {why_not}")
        if (end - start) / 2 < self.min_slice:
            raise LogQueryError(f"Log Analytics returned an incomplete result for {span} even at the smallest "
                                f"slice ({self.min_slice}): {incomplete}")
        middle = start + (end - start) / 2
        return (self._query_range(kql, start, middle, splittable, why_not)
                + self._query_range(kql, middle, end, splittable, why_not))

    def _query_once(self, kql: str, start: datetime, end: datetime) -> tuple[list[Row], str | None]:
        """The rows of one request, and why they are incomplete (None: they are complete)."""
        options: dict[str, Any] = {"retry_on_methods": _RETRIED_METHODS}
        if self._plain_http:
            options["enforce_https"] = False
        try:
            result = self.client.query_workspace(self.workspace_id, kql, timespan=(start, end),
                                                 server_timeout=self.timeout, **options)
        except HttpResponseError as error:
            raise LogQueryError(_http_reason(error)) from error
        except AzureError as error:  # connection, read timeout, credential
            raise LogQueryError(f"Log Analytics query failed: {type(error).__name__}: {error.message}") from error
        if isinstance(result, LogsQueryPartialResult):
            return rows_of_tables(result.partial_data or []), _partial_reason(result)
        rows = rows_of_tables(result.tables)
        if len(rows) >= SERVICE_ROW_LIMIT:
            return rows, f"the result has {len(rows)} rows, the service's cap, so it is probably cut"
        return rows, None


def log_analytics_source_from_settings(credential: TokenCredential,
                                       environ: Mapping[str, str] | None = None) -> LogAnalyticsSource:
    """The source the app settings describe; SettingsError names a missing or wrong setting."""
    workspace_id = require_setting("LOG_ANALYTICS_WORKSPACE_ID", environ)
    endpoint = read_setting("LOG_ANALYTICS_ENDPOINT", environ)
    timeout = read_setting("LOG_ANALYTICS_TIMEOUT_SECONDS", environ)
    if not 1 <= timeout <= MAX_SERVER_TIMEOUT:
        raise SettingsError(f"setting LOG_ANALYTICS_TIMEOUT_SECONDS: the service allows at most "
                            f"{MAX_SERVER_TIMEOUT} seconds (got {timeout})")
    try:
        return LogAnalyticsSource(workspace_id, credential, endpoint=endpoint, timeout=timeout)
    except ValueError as error:
        raise SettingsError(f"setting LOG_ANALYTICS_ENDPOINT: {error}") from None


# -- when may a time range be split ------------------------------------------------------------------------------

ROW_WISE_OPERATORS = frozenset({
    "where", "filter", "project", "project-away", "project-keep", "project-rename", "project-reorder", "extend",
    "parse", "parse-where", "parse-kv", "mv-expand", "union",
})
_NOT_TIME_BOUND = ("toscalar", "materialize", "datatable", "range", "print", "externaldata", "evaluate", "invoke",
                   "fork", "facet", "join", "lookup")
_STRING = re.compile(r"""@?"(?:[^"\\\n]|\\.)*"|@?'(?:[^'\\\n]|\\.)*'|```.*?```""", re.S)
_COMMENT = re.compile(r"//[^\n]*")


def row_wise(kql: str) -> tuple[bool, str]:
    """Whether every output row of `kql` comes from one input row, so split time ranges may be concatenated.

    Conservative: (True, "") only when the check is sure; otherwise (False, the reason).
    """
    text = _COMMENT.sub(" ", _STRING.sub('""', kql))
    for word in _NOT_TIME_BOUND:
        if re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
            return False, f"the query uses {word}, which combines rows or reads rows outside the time range"
    depth = 0
    for index, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "|":
            if depth > 0:
                return False, "the query has a subquery"
            operator = re.match(r"\s*([A-Za-z][\w-]*)", text[index + 1:])
            name = operator.group(1) if operator else "?"
            if name not in ROW_WISE_OPERATORS:
                return False, f"its '{name}' operator combines rows, so halves would give a different answer"
    return True, ""


# -- result conversion -------------------------------------------------------------------------------------------

def rows_of_tables(tables: list[LogsTable]) -> list[Row]:
    """The primary table's rows as dicts, with the embedded engine's Python values."""
    if not tables:
        return []
    table = next((t for t in tables if t.name == "PrimaryResult"), tables[0])
    return typed_rows(table.columns, table.columns_types, table.rows)


def typed_rows(names: Sequence[str], kinds: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[Row]:
    """Rows of a Kusto REST result (columns named and typed as Kusto types them) as dicts of Python values."""
    converters = [_converter(kind) for kind in kinds]
    return [{name: convert(value) for name, convert, value in zip(names, converters, row, strict=True)}
            for row in rows]


def _converter(kind: str):
    return _CONVERTERS.get(kind.lower(), _same)


def _same(value: Any) -> Any:
    return value


def _datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    return parse_datetime(value).astimezone(UTC)


def _dynamic(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string in a dynamic column


_TIMESPAN = re.compile(r"^(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def _timespan(value: Any) -> Any:
    if not isinstance(value, str) or not value:
        return None if value in (None, "") else value
    match = _TIMESPAN.match(value)
    if not match:
        return value
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
                     microseconds=int((fraction or "0").ljust(7, "0")[:6]))
    return -span if sign else span


def _integer(value: Any) -> Any:
    return None if value is None or value == "" else int(value)


def _real(value: Any) -> Any:
    return None if value is None or value == "" else float(value)


def _bool(value: Any) -> Any:
    if isinstance(value, str):
        return {"true": True, "false": False}.get(value.lower())
    return None if value is None else bool(value)


def _decimal(value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return value


def _guid(value: Any) -> Any:
    return None if value is None or value == "" else str(value)


_CONVERTERS = {
    "datetime": _datetime, "dynamic": _dynamic, "timespan": _timespan, "int": _integer, "long": _integer,
    "real": _real, "bool": _bool, "boolean": _bool, "decimal": _decimal, "guid": _guid, "uniqueid": _guid,
}


# -- errors ------------------------------------------------------------------------------------------------------

def _partial_reason(result: LogsQueryPartialResult) -> str:
    error = result.partial_error
    if error is None:
        return "the service reported a partial result"
    messages = [error.message] if error.message else []
    messages += _inner_messages(error.details or [])
    return f"{error.code or 'PartialError'}: " + " / ".join(dict.fromkeys(m for m in messages if m))


def _inner_messages(details: list[Any]) -> list[str]:
    found = []
    for detail in details:
        if not isinstance(detail, Mapping):
            continue
        inner = detail
        while isinstance(inner.get("innererror"), Mapping):
            inner = inner["innererror"]
        found.append(str(inner.get("message") or detail.get("message") or ""))
    return found


def _http_reason(error: HttpResponseError) -> str:
    status = error.status_code
    detail = ""
    try:
        document = json.loads(error.response.text()) if error.response is not None else None
    except (ValueError, AttributeError, TypeError):
        document = None
    if isinstance(document, Mapping) and isinstance(document.get("error"), Mapping):
        body = document["error"]
        inner = body
        while isinstance(inner.get("innererror"), Mapping):
            inner = inner["innererror"]
        parts = [f"{body.get('code', '')}: {body.get('message', '')}".strip(": ")]
        if inner is not body and inner.get("message"):
            parts.append(str(inner["message"]))
        detail = " / ".join(parts)
    if not detail:
        detail = (error.message or str(error)).splitlines()[0]
    prefix = f"Log Analytics answered HTTP {status}" if status else "Log Analytics query failed"
    if status in (408, 429) or (status is not None and status >= 500):
        prefix += " (after retries)"
    return f"{prefix}: {detail}"


def check_endpoint(endpoint: str, what: str) -> bool:
    """True when the endpoint is plain http on a loopback address; ValueError for any other non-https endpoint."""
    parts = urlsplit(endpoint)
    if parts.scheme == "https" and parts.hostname:
        return False
    if parts.scheme == "http" and _is_loopback(parts.hostname or ""):
        return True
    raise ValueError(f"{what} must be https (a bearer token never travels in clear text); "
                     f"plain http is allowed only on a loopback address for a local stand-in, not {endpoint!r}")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
