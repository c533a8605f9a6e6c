"""A LogSource for Azure Data Explorer and Fabric Eventhouse: KQL run by the cluster through `azure-kusto-data`.

The catalog's queries run unchanged. Tables exported from Log Analytics often land under other names (for example
`SpSignIns` for AADServicePrincipalSignInLogs): `tables` maps a Log Analytics name to the cluster's, and every query
starts with `let <Log Analytics name> = <cluster table> | extend Type = "<Log Analytics name>";` for each mapping, so
the query text and the coverage query (which groups by `Type`) need no change. Unlike Log Analytics, a cluster has no
request timespan: the catalog's queries bound themselves with `WindowStart`/`WindowEnd` and their lookbacks.

Incomplete results are never accepted, as with the Log Analytics adapter. A cluster that cuts a result (its result
set limit, 500,000 rows / 64 MB by default, or a query stopped part way) answers HTTP 200 with the rows it has and
an error in QueryCompletionInformation; that, and a result of exactly the row limit, raise IncompleteResult. Every
detection aggregates or joins, so a time range is never split and re-combined here: the error asks for a shorter
period instead.

Timeouts: `timeout` is the server timeout of one query (the `servertimeout` request property, at most an hour); the
client waits that long plus a margin. Throttling (HTTP 429), server errors (5xx) and network failures are retried
`retries` times with a doubling wait; anything else, or the last failure, raises LogQueryError with the cluster's
own message.

Credentials: an azure-identity TokenCredential (in Azure the Function's managed identity, which needs only the
Viewer role on the one database). The cluster URL must be https; plain http is accepted only on a loopback address
(a local stand-in such as `duckdb-kql serve`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from azure.core.credentials import TokenCredential

from shared.logsource.base import IncompleteResult, LogQueryError, Row
from shared.logsource.log_analytics import SERVICE_ROW_LIMIT, check_endpoint, typed_rows
from shared.settings import SettingsError, read_setting, require_setting
from shared.text import utc

MAX_SERVER_TIMEOUT = 3600  # seconds; a cluster's longest query timeout without `norequesttimeout`
CLIENT_TIMEOUT_MARGIN = 30  # seconds the client waits beyond the server timeout
_NAME = re.compile(r"^[A-Za-z_][\w]*$")


class KustoSource:
    """Answers LogSource queries from one database of an Azure Data Explorer cluster or Fabric Eventhouse.

    `cluster`: the query URI (https://<cluster>.<region>.kusto.windows.net, or an Eventhouse's query URI).
    `tables`: Log Analytics table name -> the cluster's table name, for tables stored under another name.
    `client`: a ready KustoClient (tests); otherwise one is built on `credential`.
    `now`: what now() and ago() read in every query (a `set query_now` statement); None: the cluster's clock.
    """

    def __init__(self, cluster: str, database: str, credential: TokenCredential | None = None, *,
                 tables: Mapping[str, str] | None = None, timeout: int = 600, retries: int = 3,
                 backoff: float = 1.0, client: Any = None, now: datetime | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not database:
            raise ValueError("a database name is required")
        if not 1 <= int(timeout) <= MAX_SERVER_TIMEOUT:
            raise ValueError(f"the server timeout must be 1 to {MAX_SERVER_TIMEOUT} seconds, not {timeout}")
        self.cluster = cluster.rstrip("/")
        check_endpoint(self.cluster, "the Kusto cluster URL")
        self.database = database
        self.tables = dict(tables or {})
        for name in (*self.tables, *self.tables.values()):
            if not _NAME.match(name):
                raise ValueError(f"{name!r} is not a table name (letters, digits and _ only)")
        self.timeout = int(timeout)
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.now = now
        self.client = client or _client(self.cluster, credential)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> KustoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def query(self, kql: str, start: datetime, end: datetime) -> list[Row]:
        """Rows of `kql`; `start`/`end` only name the range in errors (the query's own header bounds it)."""
        if end <= start:
            raise ValueError(f"the time range must end after it starts ({start.isoformat()} .. {end.isoformat()})")
        response = self._execute(self.mapped(kql))
        span = f"{start.isoformat()} .. {end.isoformat()}"
        if response.errors_count:
            reasons = "; ".join(response.get_exceptions())
            raise IncompleteResult(f"the Kusto cluster returned an incomplete result for {span}: {reasons}")
        table = response.primary_results[0] if response.primary_results else None
        if table is None:
            return []
        rows = typed_rows([c["ColumnName"] for c in table.raw_columns],
                          [c.get("ColumnType") or c.get("DataType") or "" for c in table.raw_columns], table.raw_rows)
        if len(rows) >= SERVICE_ROW_LIMIT:
            raise IncompleteResult(f"the Kusto cluster returned {len(rows)} rows for {span}, its result limit, so "
                                   "the result is probably cut; audit a shorter period")
        return rows

    def mapped(self, kql: str) -> str:
        """The query as sent: the pinned clock, then one `let` per mapped table, in front of it (set statements
        must come first)."""
        clock = f"set query_now = datetime({utc(self.now).isoformat().replace('+00:00', 'Z')});\n" if self.now else ""
        lets = "".join(f'let {name} = {stored} | extend Type = "{name}";\n' for name, stored in self.tables.items())
        return clock + lets + kql

    def _execute(self, text: str) -> Any:
        from azure.kusto.data import ClientRequestProperties
        from azure.kusto.data.exceptions import KustoError, KustoServiceError, KustoThrottlingError

        properties = ClientRequestProperties()
        properties.set_option(ClientRequestProperties.request_timeout_option_name, timedelta(seconds=self.timeout))
        properties.set_option(ClientRequestProperties.results_defer_partial_query_failures_option_name, False)
        for attempt in range(self.retries + 1):
            try:
                return self.client.execute_query(self.database, text, properties)
            except (KustoThrottlingError, KustoServiceError) as error:
                if attempt == self.retries or not _transient(error):
                    raise LogQueryError(_reason(error, attempt)) from error
            except KustoError as error:  # a bad connection string, a credential that cannot get a token
                raise LogQueryError(f"Kusto query failed: {type(error).__name__}: {error}") from error
            self.sleep(self.backoff * 2 ** attempt)
        raise AssertionError("unreachable")


def _client(cluster: str, credential: TokenCredential | None) -> Any:
    from azure.kusto.data import KustoClient, KustoConnectionStringBuilder

    if credential is None:
        raise ValueError("a credential is required to reach a Kusto cluster")
    return KustoClient(KustoConnectionStringBuilder.with_azure_token_credential(cluster, credential))


def _status(error: Exception) -> int | None:
    response = getattr(error, "http_response", None)
    return getattr(response, "status_code", None)


def _transient(error: Exception) -> bool:
    from azure.kusto.data.exceptions import KustoNetworkError, KustoThrottlingError

    status = _status(error)
    return (isinstance(error, KustoThrottlingError | KustoNetworkError)
            or (status is not None and (status in (408, 429) or status >= 500)))


def _reason(error: Exception, attempt: int) -> str:
    status = _status(error)
    detail = _service_message(error) or str(error).splitlines()[0]
    prefix = f"the Kusto cluster answered HTTP {status}" if status else "Kusto query failed"
    if attempt:
        prefix += f" (after {attempt} retries)"
    return f"{prefix}: {detail}"


def _service_message(error: Exception) -> str:
    """The `@message` of Kusto's error body (the precise reason), else its description."""
    response = getattr(error, "http_response", None)
    try:
        body = json.loads(response.text) if response is not None else None
    except (ValueError, TypeError, AttributeError):
        body = None
    inner = body.get("error") if isinstance(body, dict) else None
    if not isinstance(inner, dict):
        return ""
    return str(inner.get("@message") or inner.get("message") or "")


def kusto_source_from_settings(credential: TokenCredential,
                               environ: Mapping[str, str] | None = None) -> KustoSource:
    """The cluster the app settings name; SettingsError names a missing or wrong setting."""
    cluster = require_setting("KUSTO_CLUSTER_URL", environ)
    database = require_setting("KUSTO_DATABASE", environ)
    try:
        return KustoSource(cluster, database, credential, tables=read_setting("KUSTO_TABLES", environ),
                           timeout=read_setting("KUSTO_TIMEOUT_SECONDS", environ))
    except ValueError as error:
        raise SettingsError(f"Kusto settings: {error}") from None
