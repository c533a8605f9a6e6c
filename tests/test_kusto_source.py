"""The Kusto LogSource (Azure Data Explorer / Fabric Eventhouse) with the real `azure-kusto-data` client and
azure-identity's ManagedIdentityCredential, against `duckdb-kql serve` (a local Kusto REST endpoint speaking the v2
frame protocol) over the sample tenant, with one table stored under another name as an export often is."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from servers.kusto_server import KustoFaultProxy, KustoServe

from shared.catalog.loader import load_catalog
from shared.cli import exit_codes
from shared.detect import run_catalog
from shared.logsource.base import IncompleteResult, LogQueryError
from shared.logsource.coverage import detection_requirement, measure_coverage
from shared.logsource.database import LogDatabase
from shared.logsource.kusto import KustoSource, kusto_source_from_settings
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.settings import SettingsError
from shared.windows import slices

MAPPED = {"AADServicePrincipalSignInLogs": "SpSignIns"}
SINCE = SAMPLE_NOW - timedelta(days=1)
SIGN_INS = "AADServicePrincipalSignInLogs | summarize SignIns = count() by ServicePrincipalId | order by SignIns desc"


@pytest.fixture(scope="module")
def database_file(sample_tenant, tmp_path_factory):
    """The sample tenant's logs in a DuckDB file, the sign-in table renamed as in an export to a cluster."""
    database = LogDatabase()
    database.load_folder(sample_tenant / "logs")
    path = tmp_path_factory.mktemp("kusto") / "logs.duckdb"
    database.connection.execute(f"ATTACH '{path}' AS logs")
    database.connection.execute("COPY FROM DATABASE memory TO logs")
    database.connection.execute('ALTER TABLE logs."AADServicePrincipalSignInLogs" RENAME TO "SpSignIns"')
    database.connection.execute("DETACH logs")
    return path


@pytest.fixture(scope="module")
def cluster(database_file):
    with KustoServe(database_file) as serve:
        yield serve


@pytest.fixture(scope="module")
def proxy(cluster):
    with KustoFaultProxy(cluster.url) as proxy:
        yield proxy


@pytest.fixture
def source(proxy, cluster, credential):
    proxy.reset()
    with KustoSource(proxy.url, cluster.database, credential, tables=MAPPED, timeout=120, backoff=0.01) as source:
        yield source
    proxy.reset()


def query_requests(proxy):
    return [r for r in proxy.requests if r.path.startswith("/v2/rest/query")]


def test_the_whole_catalog_gives_the_embedded_engines_findings(source, sample_source):
    catalog = load_catalog()
    embedded = run_catalog(catalog, sample_source, SINCE, SAMPLE_NOW)
    kusto = run_catalog(catalog, source, SINCE, SAMPLE_NOW)
    assert kusto.errors == {} and embedded.errors == {}
    assert kusto.windows == embedded.windows
    assert embedded.findings, "the sample tenant has findings on this day"

    def dumped(findings):
        return sorted(json.dumps(unordered(f.model_dump(mode="json")), sort_keys=True) for f in findings)

    assert dumped(kusto.findings) == dumped(embedded.findings)


def unordered(value):
    """make_set has no order in Kusto, and DuckDB's parallel aggregation gives none either: compare lists as sets."""
    if isinstance(value, dict):
        return {key: unordered(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((unordered(item) for item in value), key=lambda item: json.dumps(item, sort_keys=True))
    return value


def test_coverage_counts_the_mapped_table_under_its_log_analytics_name(source, sample_source):
    requirements = [detection_requirement(d, slices(SINCE, SAMPLE_NOW, d.frequency)) for d in load_catalog()]
    through_kusto = measure_coverage(source, requirements)
    assert through_kusto == measure_coverage(sample_source, requirements)
    assert through_kusto.tables["AADServicePrincipalSignInLogs"].rows > 0


def test_the_request_names_the_database_maps_the_table_and_sets_the_server_timeout(source, proxy, cluster,
                                                                                    token_server):
    rows = source.query(SIGN_INS, SINCE, SAMPLE_NOW)
    assert rows and set(rows[0]) == {"ServicePrincipalId", "SignIns"}
    (request,) = query_requests(proxy)
    assert request.body["db"] == cluster.database
    assert request.body["csl"] == ('let AADServicePrincipalSignInLogs = SpSignIns | extend Type = '
                                   '"AADServicePrincipalSignInLogs";\n' + SIGN_INS)
    options = json.loads(request.body["properties"])["Options"]
    assert options["servertimeout"] == "0:02:00" and options["deferpartialqueryfailures"] is False
    scheme, token = request.headers["Authorization"].split(" ", 1)
    assert scheme == "Bearer" and token_server.is_valid(token)


def test_a_cut_result_is_an_error_never_fewer_rows(source, proxy):
    proxy.fail_next("partial")
    with pytest.raises(IncompleteResult, match=r"incomplete result.*E_QUERY_RESULT_SET_TOO_LARGE"):
        source.query(SIGN_INS, SINCE, SAMPLE_NOW)
    assert len(source.query(SIGN_INS, SINCE, SAMPLE_NOW)) > 1  # the same query, uncut


def test_throttling_and_server_errors_are_retried(source, proxy):
    proxy.fail_next(429)
    proxy.fail_next(503)
    assert source.query(SIGN_INS, SINCE, SAMPLE_NOW)
    assert len(query_requests(proxy)) == 3


def test_a_lasting_server_error_names_the_status_after_the_retries(source, proxy):
    proxy.fail_next(500, times=4)
    with pytest.raises(LogQueryError, match=r"HTTP 500 \(after 3 retries\): service error 500"):
        source.query(SIGN_INS, SINCE, SAMPLE_NOW)
    assert len(query_requests(proxy)) == 4


def test_a_bad_query_is_not_retried_and_says_what_the_cluster_said(source, proxy):
    with pytest.raises(LogQueryError, match=r"HTTP 400.*NoSuchTable"):
        source.query("NoSuchTable | take 1", SINCE, SAMPLE_NOW)
    assert len(query_requests(proxy)) == 1


def test_a_token_never_goes_to_a_plain_http_cluster_off_this_machine(credential):
    with pytest.raises(ValueError, match="must be https"):
        KustoSource("http://adx.example.net", "logs", credential)
    with pytest.raises(ValueError, match="not a table name"):
        KustoSource("https://adx.example.net", "logs", credential, tables={"AuditLogs": "Audit | take 1"})


def test_settings_choose_the_cluster_and_name_what_is_missing(credential):
    with pytest.raises(SettingsError, match="KUSTO_DATABASE is not set"):
        kusto_source_from_settings(credential, {"KUSTO_CLUSTER_URL": "https://adx.example.net"})
    with pytest.raises(SettingsError, match="KUSTO_TABLES"):
        kusto_source_from_settings(credential, {"KUSTO_CLUSTER_URL": "https://adx.example.net",
                                                "KUSTO_DATABASE": "logs", "KUSTO_TABLES": '["SpSignIns"]'})
    with kusto_source_from_settings(credential, {"KUSTO_CLUSTER_URL": "https://adx.example.net/",
                                                 "KUSTO_DATABASE": "logs", "KUSTO_TABLES": '{"AuditLogs": "Audit"}',
                                                 "KUSTO_TIMEOUT_SECONDS": "300"}) as source:
        assert (source.cluster, source.database, source.tables, source.timeout) == (
            "https://adx.example.net", "logs", {"AuditLogs": "Audit"}, 300)


def test_run_and_the_function_read_the_cluster_when_it_is_set(credential):
    from shared.audit.build import log_source_from_settings
    from shared.logsource.log_analytics import LogAnalyticsSource

    cluster = {"KUSTO_CLUSTER_URL": "https://adx.example.net", "KUSTO_DATABASE": "logs",
               "LOG_ANALYTICS_WORKSPACE_ID": "00000000-0000-0000-0000-000000000001"}
    assert isinstance(log_source_from_settings(credential, cluster), KustoSource)
    del cluster["KUSTO_CLUSTER_URL"]
    assert isinstance(log_source_from_settings(credential, cluster), LogAnalyticsSource)


def test_detect_reads_a_cluster_instead_of_a_folder(cluster, token_server, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from shared.cli import app

    for name, value in token_server.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUSTO_TABLES", json.dumps(MAPPED))
    runner = CliRunner(env={"COLUMNS": "250"})  # one line per message
    window = ["--now", SAMPLE_NOW.isoformat(), "--since", (SAMPLE_NOW - timedelta(hours=6)).isoformat()]
    result = runner.invoke(app, ["detect", "--kusto-cluster", cluster.url, "--kusto-database", cluster.database,
                                 "--json", *window])
    # Microsoft's risk tables hold only their stories' few rows, none in these six hours: those rules alone are not
    # evaluated, so the sign-in table read under its mapped name counted.
    assert result.exit_code == exit_codes.NOT_EVALUATED, result.output
    assert '"detection_id"' in result.output  # findings, as JSON
    not_evaluated = [line for line in result.stderr.splitlines() if "not evaluated" in line]
    assert not_evaluated and not [line for line in not_evaluated if "SignInLogs" in line], result.output
    assert "AADRiskyServicePrincipals and AADServicePrincipalRiskEvents had no rows" in result.output
    both = runner.invoke(app, ["detect", "--logs", str(tmp_path), "--kusto-cluster", cluster.url, *window])
    assert both.exit_code == 2 and "not both" in both.output
    neither = runner.invoke(app, ["detect", *window])
    assert neither.exit_code == 2 and "--kusto-cluster" in neither.output


def test_a_pinned_clock_goes_first_as_a_set_statement(credential, cluster):
    pinned = KustoSource(cluster.url, cluster.database, credential, tables=MAPPED, now=SAMPLE_NOW)
    assert pinned.mapped("print 1").splitlines() == [
        f"set query_now = datetime({SAMPLE_NOW.isoformat().replace('+00:00', 'Z')});",
        'let AADServicePrincipalSignInLogs = SpSignIns | extend Type = "AADServicePrincipalSignInLogs";',
        "print 1"]
    assert not KustoSource(cluster.url, cluster.database, credential, tables=MAPPED).mapped("print 1").startswith("set")


def test_hunt_reads_a_cluster_with_ago_and_now_pinned_to_now(cluster, token_server, monkeypatch):
    from typer.testing import CliRunner

    from shared.cli import app

    for name, value in token_server.environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KUSTO_TABLES", json.dumps(MAPPED))
    target = ["--kusto-cluster", cluster.url, "--kusto-database", cluster.database, "--now", SAMPLE_NOW.isoformat()]
    runner = CliRunner()
    clock = runner.invoke(app, ["hunt", "print Now = now(), DayAgo = ago(1d)", *target, "--format", "json"])
    assert clock.exit_code == 0, clock.output
    row = json.loads(clock.stdout)[0]
    assert row["Now"].startswith(SAMPLE_NOW.strftime("%Y-%m-%dT%H:%M:%S"))
    assert row["DayAgo"].startswith((SAMPLE_NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S"))
    recent = runner.invoke(app, ["hunt", "AADServicePrincipalSignInLogs | where TimeGenerated > ago(1d) "
                                 "| summarize SignIns = count()", *target, "--format", "json",
                                 "--since", (SAMPLE_NOW - timedelta(days=1)).isoformat()])
    assert recent.exit_code == 0, recent.output
    assert json.loads(recent.stdout)[0]["SignIns"] > 0  # read through the mapped table name
    assert "no query time range" in recent.stderr
