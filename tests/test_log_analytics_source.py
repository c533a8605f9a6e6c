"""LogAnalyticsSource through the real SDK: azure-monitor-query's LogsQueryClient, azure-core's pipeline (retry,
bearer token policy) and azure-identity's ManagedIdentityCredential, against local servers that speak the Log
Analytics query protocol and the App Service managed-identity token protocol."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from azure.core.pipeline.transport import RequestsTransport
from servers.log_analytics_server import LogAnalyticsServer, format_datetime, format_timespan

from shared.catalog.loader import load_catalog
from shared.catalog.render import render
from shared.catalog.testing import compare_rows
from shared.detect import run_detection
from shared.logsource.base import LogQueryError
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.log_analytics import (
    DEFAULT_ENDPOINT,
    LogAnalyticsSource,
    log_analytics_source_from_settings,
    row_wise,
)
from shared.settings import SettingsError

WORKSPACE = "6f1c3e2a-0b7d-4c55-9a1e-3d2f4b5c6a7e"
CATALOG = load_catalog()
CASES = [(detection, test) for detection in CATALOG for test in detection.tests]
DAY = datetime(2026, 3, 10, tzinfo=UTC)
EVENTS = "AADServicePrincipalSignInLogs | project TimeGenerated, ServicePrincipalId, ResultType"


@pytest.fixture(scope="module")
def la_server(token_server):
    with LogAnalyticsServer(workspace_id=WORKSPACE, token_validator=token_server.is_valid) as server:
        yield server


@pytest.fixture
def server(la_server):
    """The shared server with a fresh database, no queued faults and the real service's caps."""
    la_server.reset()
    la_server.database = LogDatabase()
    la_server.now = None
    la_server.row_limit = 500_000
    yield la_server
    la_server.reset()


@pytest.fixture
def source(server, credential):
    with LogAnalyticsSource(WORKSPACE, credential, endpoint=server.url, timeout=120, min_slice=timedelta(minutes=15),
                            retry_total=3, retry_backoff_factor=0.01, retry_backoff_max=0.05) as source:
        yield source


def sign_ins(*moments: datetime) -> list[tuple[None, dict]]:
    return [(None, {"TimeGenerated": moment.isoformat(), "ResultType": "7000215",
                    "ServicePrincipalId": f"00000000-0000-0000-0000-{index:012d}", "IPAddress": "20.1.2.3"})
            for index, moment in enumerate(moments)]


def load(server: LogAnalyticsServer, rows: list[tuple[None, dict]]) -> None:
    assert server.database.insert("AADServicePrincipalSignInLogs", rows) == []


def comparable(rows: list[dict]) -> list[str]:
    def plain(value):
        return str(value) if isinstance(value, uuid.UUID) else value
    return sorted(json.dumps({k: plain(v) for k, v in row.items()}, default=str, sort_keys=True) for row in rows)


# -- the catalog's own tests, through the production path ---------------------------------------------------------

@pytest.mark.parametrize(("detection", "test"), CASES, ids=[f"{d.name}: {t.name}" for d, t in CASES])
def test_catalog_tests_pass_through_log_analytics(detection, test, server, source):
    database = LogDatabase()
    for table, rows in test.rows.items():
        assert database.insert(table, ((None, row) for row in rows)) == []
    server.database = database
    server.now = test.window.end
    kql = render(detection, test.window.start, test.window.end, test.parameters)
    start = test.window.start - detection.lookback_span

    rows = source.query(kql, start, test.window.end)

    assert compare_rows(test.expect, rows) == []
    embedded = EmbeddedLogSource(database, now=test.window.end).query(kql, start, test.window.end)
    assert comparable(rows) == comparable(embedded)
    assert server.request_count == 1


def test_the_request_is_what_the_service_expects(server, source, token_server):
    detection = CATALOG.get("credential_added_to_active_identity")
    load(server, sign_ins(DAY - timedelta(days=2)))
    start, end = DAY, DAY + timedelta(days=1)

    run_detection(detection, source, start, end)

    [request] = server.query_requests
    assert request.path == f"/v1/workspaces/{WORKSPACE}/query"
    assert request.body == {
        "query": render(detection, start, end),
        "timespan": "2026-02-25T00:00:00.000Z/2026-03-11T00:00:00.000Z",  # the window plus the 13 d lookback
        "workspaces": None,
    }
    assert request.headers["Prefer"] == "wait=120"
    scheme, token = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Bearer" and token_server.is_valid(token)
    assert token_server.resource_of(token) == server.url  # the SDK's audience is the endpoint
    assert token_server.requests[-1].api_version == "2019-08-01"


def test_rows_have_the_embedded_engines_python_types(server, source):
    load(server, sign_ins(DAY + timedelta(hours=1, microseconds=250)))
    kql = ("AADServicePrincipalSignInLogs | extend Bag = dynamic({'a': [1, 2]}), Span = 90m, Count = 3, "
           "Ratio = 0.25, Flag = true | project TimeGenerated, ServicePrincipalId, Bag, Span, Count, Ratio, Flag")

    [row] = source.query(kql, DAY, DAY + timedelta(days=1))

    assert row == {"TimeGenerated": DAY + timedelta(hours=1, microseconds=250),
                   "ServicePrincipalId": "00000000-0000-0000-0000-000000000000", "Bag": {"a": [1, 2]},
                   "Span": timedelta(minutes=90), "Count": 3, "Ratio": 0.25, "Flag": True}
    assert row["TimeGenerated"].tzinfo is UTC


def test_the_server_restricts_tables_to_the_timespan(server, source):
    load(server, sign_ins(DAY - timedelta(seconds=1), DAY, DAY + timedelta(hours=23), DAY + timedelta(days=1)))

    rows = source.query("AADServicePrincipalSignInLogs | project TimeGenerated", DAY, DAY + timedelta(days=1))

    assert sorted(row["TimeGenerated"] for row in rows) == [DAY, DAY + timedelta(hours=23)]


def test_wire_formats_are_the_services():
    assert format_datetime(datetime(2026, 3, 10, 1, 2, 3, 120000, tzinfo=UTC)) == "2026-03-10T01:02:03.12Z"
    assert format_datetime(datetime(2026, 3, 10)) == "2026-03-10T00:00:00Z"
    assert format_timespan(timedelta(days=1, hours=2, seconds=5)) == "1.02:00:05"
    assert format_timespan(-timedelta(minutes=30)) == "-00:30:00"


# -- transient failures: azure-core's RetryPolicy ----------------------------------------------------------------

class RecordedWaits(RequestsTransport):
    """azure-core's requests transport, keeping the waits the retry policy asks for instead of sleeping them."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float] = []

    def sleep(self, duration: float) -> None:
        self.waits.append(duration)


@pytest.mark.parametrize(("retry_after", "waited"), [(1, 1), (75, 60)])  # the service has asked for 75 s
def test_throttling_waits_for_retry_after_capped_at_the_maximum_then_succeeds(server, credential, retry_after,
                                                                              waited):
    load(server, sign_ins(DAY + timedelta(hours=1)))
    server.fail_next("throttled", times=1, retry_after=retry_after)
    transport = RecordedWaits()
    with LogAnalyticsSource(WORKSPACE, credential, endpoint=server.url, retry_backoff_max=60,
                            transport=transport) as source:
        rows = source.query(EVENTS, DAY, DAY + timedelta(days=1))

    assert len(rows) == 1 and len(server.query_requests) == 2
    assert transport.waits == [waited]


@pytest.mark.parametrize("status", [503, 502, 500, 429])  # 429 here without Retry-After: backoff
def test_transient_failures_are_retried(server, source, status):
    load(server, sign_ins(DAY + timedelta(hours=1)))
    server.fail_next(status, times=2)

    assert len(source.query(EVENTS, DAY, DAY + timedelta(days=1))) == 1
    assert server.request_count == 3


def test_persistent_failure_is_a_log_query_error_after_the_configured_retries(server, source):
    server.fail_next(500, times=50)

    with pytest.raises(LogQueryError, match=r"HTTP 500 \(after retries\): InternalServerError"):
        source.query(EVENTS, DAY, DAY + timedelta(days=1))

    assert server.request_count == 4  # the first try and retry_total=3 retries


def test_a_rejected_query_says_why(server, source):
    with pytest.raises(LogQueryError, match=r"HTTP 400: BadArgumentError.*parse"):
        source.query("AADServicePrincipalSignInLogs | where (", DAY, DAY + timedelta(days=1))
    assert server.request_count == 1  # a bad query is not retried


def test_a_refused_token_is_a_log_query_error(server, source, token_server):
    server.token_validator = lambda token: False
    try:
        with pytest.raises(LogQueryError, match="HTTP 401: AuthorizationRequiredError"):
            source.query(EVENTS, DAY, DAY + timedelta(days=1))
    finally:
        server.token_validator = token_server.is_valid


# -- incomplete results ------------------------------------------------------------------------------------------

def test_a_partial_result_is_split_and_the_halves_concatenated(server, source):
    moments = [DAY + timedelta(hours=hour) for hour in range(0, 24, 3)]
    load(server, sign_ins(*moments))
    server.fail_next("partial", times=1)

    rows = source.query(EVENTS, DAY, DAY + timedelta(days=1))

    assert sorted(row["TimeGenerated"] for row in rows) == moments
    assert [request.body["timespan"] for request in server.query_requests] == [
        "2026-03-10T00:00:00.000Z/2026-03-11T00:00:00.000Z",
        "2026-03-10T00:00:00.000Z/2026-03-10T12:00:00.000Z",
        "2026-03-10T12:00:00.000Z/2026-03-11T00:00:00.000Z",
    ]


def test_a_result_over_the_row_cap_is_split_until_the_slices_fit(server, source):
    moments = [DAY + timedelta(hours=hour) for hour in range(24)]
    load(server, sign_ins(*moments))
    server.row_limit = 5

    rows = source.query(EVENTS, DAY, DAY + timedelta(days=1))

    assert sorted(row["TimeGenerated"] for row in rows) == moments
    assert server.request_count == 1 + 2 + 4 + 8  # 24 h -> 12 h -> 6 h -> 3 h slices of 3 rows


def test_still_partial_at_the_smallest_slice_is_a_log_query_error(server, source):
    load(server, sign_ins(*(DAY + timedelta(minutes=5, seconds=second) for second in range(5))))
    server.row_limit = 2

    with pytest.raises(LogQueryError, match=r"even at the smallest slice \(0:15:00\).*record count limit 2"):
        source.query(EVENTS, DAY, DAY + timedelta(hours=1))

    assert [request.body["timespan"] for request in server.query_requests] == [
        "2026-03-10T00:00:00.000Z/2026-03-10T01:00:00.000Z",
        "2026-03-10T00:00:00.000Z/2026-03-10T00:30:00.000Z",
        "2026-03-10T00:00:00.000Z/2026-03-10T00:15:00.000Z",
    ]


def test_an_aggregating_query_is_never_split(server, source):
    load(server, sign_ins(DAY + timedelta(hours=1), DAY + timedelta(hours=13)))
    server.fail_next("partial", times=1)

    with pytest.raises(LogQueryError, match=r"incomplete result.*E_QUERY_RESULT_SET_TOO_LARGE.*'summarize' operator"):
        source.query("AADServicePrincipalSignInLogs | summarize count() by ServicePrincipalId", DAY,
                     DAY + timedelta(days=1))

    assert server.request_count == 1


def test_the_caller_may_forbid_or_vouch_for_splitting(server, source):
    load(server, sign_ins(DAY + timedelta(hours=1), DAY + timedelta(hours=13)))
    server.fail_next("partial", times=1)
    with pytest.raises(LogQueryError, match="the caller said it must not be split"):
        source.query(EVENTS, DAY, DAY + timedelta(days=1), splittable=False)

    server.reset()
    server.fail_next("partial", times=1)
    rows = source.query(f"{EVENTS} | take 10", DAY, DAY + timedelta(days=1), splittable=True)
    assert len(rows) == 2 and server.request_count == 3


def test_row_wise_is_conservative():
    assert row_wise(EVENTS) == (True, "")
    assert row_wise('T | where Name has "a | summarize" // | join\n| extend X = 1 | mv-expand Y')[0]
    assert row_wise("let S = datetime(2026-01-01); T | where TimeGenerated >= S | union U | project A")[0]
    for kql in ("T | summarize count()", "T | count", "T | take 5", "T | top 3 by A", "T | sort by A",
                "T | join (U) on A", "T | where A in ((U | project A))", "T | extend X = toscalar(U | count)",
                "union T, (datatable(A: int)[1])", "T | distinct A", "T | serialize | extend R = row_number()"):
        assert not row_wise(kql)[0], kql
    for detection in CATALOG:  # every catalog rule combines rows: the source must not split its range (the
        # pipeline retries an over-cap result as shorter detection windows instead)
        assert not row_wise(render(detection, DAY, DAY + timedelta(days=1)))[0], detection.name


# -- construction and settings -----------------------------------------------------------------------------------

def test_a_missing_workspace_setting_is_named(credential):
    with pytest.raises(SettingsError, match="LOG_ANALYTICS_WORKSPACE_ID is not set"):
        log_analytics_source_from_settings(credential, environ={})


def test_settings_build_the_source(credential):
    source = log_analytics_source_from_settings(credential, environ={
        "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE, "LOG_ANALYTICS_TIMEOUT_SECONDS": "300"})
    with source:
        assert (source.workspace_id, source.endpoint, source.timeout) == (WORKSPACE, DEFAULT_ENDPOINT, 300)
    with pytest.raises(SettingsError, match="LOG_ANALYTICS_TIMEOUT_SECONDS"):
        log_analytics_source_from_settings(credential, environ={
            "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE, "LOG_ANALYTICS_TIMEOUT_SECONDS": "900"})
    with pytest.raises(SettingsError, match=r"LOG_ANALYTICS_ENDPOINT.*must be https"):
        log_analytics_source_from_settings(credential, environ={
            "LOG_ANALYTICS_WORKSPACE_ID": WORKSPACE, "LOG_ANALYTICS_ENDPOINT": "http://api.loganalytics.io"})


def test_the_bearer_token_never_goes_over_plain_http_to_a_remote_host(credential):
    with pytest.raises(ValueError, match="must be https"):
        LogAnalyticsSource(WORKSPACE, credential, endpoint="http://10.0.0.5:8080")
    LogAnalyticsSource(WORKSPACE, credential, endpoint="http://localhost:8080").close()


def test_the_production_client_is_https_bearer_with_retries_and_timeouts(credential):
    with LogAnalyticsSource(WORKSPACE, credential, timeout=300, connection_timeout=10) as source:
        pipeline = source.client._client._pipeline
        policies = [type(getattr(policy, "_policy", policy)).__name__ for policy in pipeline._impl_policies]
        retry = source.client._config.retry_policy
        config = pipeline._transport.connection_config
        assert source.client._endpoint == DEFAULT_ENDPOINT and not source._plain_http
        assert policies.index("CappedRetryPolicy") < policies.index("BearerTokenCredentialPolicy")
        assert (retry.total_retries, retry.backoff_factor, retry.backoff_max) == (4, 1.0, 60)
        assert (config.timeout, config.read_timeout) == (10, 330)


def test_the_server_also_serves_a_folder_of_log_files(tmp_path, credential, token_server):
    (tmp_path / "AADServicePrincipalSignInLogs.jsonl").write_text(
        '{"TimeGenerated": "2026-03-10T01:00:00Z", "ResultType": "7000222", "ServicePrincipalId": "sp-1"}\n')
    with LogAnalyticsServer(folder=tmp_path, token_validator=token_server.is_valid) as server, \
            LogAnalyticsSource(WORKSPACE, credential, endpoint=server.url) as source:
        rows = source.query(EVENTS, DAY, DAY + timedelta(days=1))
    assert rows == [{"TimeGenerated": DAY + timedelta(hours=1), "ServicePrincipalId": "sp-1", "ResultType": "7000222"}]
