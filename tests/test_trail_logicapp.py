"""Logic App runs in a service principal's trail: probable when only time and resource type tie them to a
sign-in, certain when the workflow's API connection is known, absent when too far away, after a sign-in to a
resource connectors do not call, or when the workflow is known to sign in as someone else.

The rows are Log Analytics rows (AzureDiagnostics WorkflowRuntime, sign-ins, AzureActivity) loaded into the
embedded engine, so the module's real queries run.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import yaml
from typer.testing import CliRunner

from shared.catalog.loader import DETECTIONS_DIR
from shared.cli import app
from shared.kql.validator import validate_queries
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.trail_logicapp import (
    CONNECTOR_RESOURCES,
    RESOURCE_WRITES,
    SIGN_INS,
    WORKFLOW_STEPS,
    logic_app_links,
    trail_events,
)

PRINCIPAL = "11111111-1111-4111-8111-111111111111"
APP_ID = "aaaaaaaa-1111-4111-8111-111111111111"
OTHER_APP_ID = "bbbbbbbb-2222-4222-8222-222222222222"
LOG_ANALYTICS = "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5"
SUBSCRIPTION = "/subscriptions/3c9d2b7a-6e51-4f08-a1b2-c3d4e5f60718/resourcegroups/rg-soc/providers"
CONNECTION = f"{SUBSCRIPTION}/microsoft.web/connections/azuremonitorlogs-soc"
DAY = datetime(2026, 3, 10, tzinfo=UTC)
SINCE, UNTIL = DAY, DAY + timedelta(days=1)
TWO_MINUTES = timedelta(minutes=2)


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return DAY.replace(hour=hour, minute=minute, second=second)


def sign_in(moment: datetime, resource_id: str, resource: str, result: str = "0") -> dict:
    return {"TimeGenerated": moment, "ServicePrincipalId": PRINCIPAL, "AppId": APP_ID, "ServicePrincipalName":
            "soc-playbooks", "ResourceIdentity": resource_id, "ResourceDisplayName": resource, "ResultType": result,
            "IPAddress": "20.50.2.14"}


def step(workflow: str, run: str, start: datetime, action: str = "", status: str = "Succeeded") -> list[dict]:
    """A run's start and completion records, or an action's completion record, as Log Analytics stores them."""
    resource_id = f"{SUBSCRIPTION}/microsoft.logic/workflows/{workflow}".upper()
    common = {"Category": "WorkflowRuntime", "ResourceId": resource_id, "resource_workflowName_s": workflow,
              "resource_runId_s": run, "startTime_t": start, "tags_LogicAppsCategory_s": "security"}
    if action:
        return [{**common, "TimeGenerated": start + timedelta(seconds=2), "resource_actionName_s": action,
                 "OperationName": "Microsoft.Logic/workflows/workflowActionCompleted", "status_s": status,
                 "endTime_t": start + timedelta(seconds=1)}]
    return [{**common, "TimeGenerated": start, "OperationName": "Microsoft.Logic/workflows/workflowRunStarted",
             "status_s": "Running"},
            {**common, "TimeGenerated": start + timedelta(seconds=5), "status_s": status,
             "OperationName": "Microsoft.Logic/workflows/workflowRunCompleted",
             "endTime_t": start + timedelta(seconds=5)}]


def write(moment: datetime, operation: str, resource_id: str, body: dict, status: str = "Success") -> list[dict]:
    """A write as the activity log records it: the request body on the Start record, the outcome on the next."""
    correlation = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_id}@{moment}"))
    outcome = {"eventCategory": "Administrative", "statusCode": "OK" if status == "Success" else "Conflict"}
    common = {"OperationNameValue": operation, "_ResourceId": resource_id, "Caller": "admin@contoso.com",
              "CorrelationId": correlation}
    return [{**common, "TimeGenerated": moment, "ActivityStatusValue": "Start",
             "Properties_d": {"eventCategory": "Administrative", "requestbody": json.dumps(body)}},
            {**common, "TimeGenerated": moment + timedelta(seconds=2), "ActivityStatusValue": status,
             "Properties_d": outcome}]


def connection_write(moment: datetime, client_id: str, status: str = "Success") -> list[dict]:
    return write(moment, "Microsoft.Web/connections/write", CONNECTION, {"properties": {
        "displayName": "Sentinel workspace", "api": {"id": "/providers/Microsoft.Web/locations/westeurope/managedApis"
                                                          "/azuremonitorlogs"},
        "parameterValues": {"token:clientId": client_id, "token:TenantId": "8a1f5c3e-2d4b-4c6a-9e7f-0b1c2d3e4f50",
                            "token:grantType": "client_credentials"}}}, status)


def workflow_write(moment: datetime, workflow: str) -> list[dict]:
    return write(moment, "Microsoft.Logic/workflows/write", f"{SUBSCRIPTION}/microsoft.logic/workflows/{workflow}",
                 {"properties": {"state": "Enabled", "parameters": {"$connections": {"value": {"azuremonitorlogs": {
                     "connectionId": CONNECTION.replace("/subscriptions/", "/SUBSCRIPTIONS/"),
                     "connectionName": "azuremonitorlogs-soc"}}}}}})


@pytest.fixture(scope="module")
def source() -> EmbeddedLogSource:
    database = LogDatabase()
    database.insert("AADServicePrincipalSignInLogs", [(None, row) for row in (
        sign_in(at(5, 11, 23), LOG_ANALYTICS, "Log Analytics API"),
        sign_in(at(7, 0, 0), LOG_ANALYTICS, "Log Analytics API"),
        sign_in(at(9, 0, 0), "cccccccc-3333-4333-8333-333333333333", "Contoso Invoices API"),
    )])
    database.insert("AzureDiagnostics", [(None, row) for row in (
        *step("Get-Evidence", "08584710362532413637129498231CU41", at(5, 12, 3), status="Failed"),
        *step("Get-Evidence", "08584710362532413637129498231CU41", at(5, 12, 4), action="Run_query_and_list_results"),
        *step("Nightly-Report", "08584710362532413637129498231CU42", at(5, 30, 0)),
        *step("Invoice-Export", "08584710362532413637129498231CU43", at(9, 0, 30)),
        *step("Enrich-Incident", "08584710362532413637129498231CU44", at(7, 0, 10)),
        *step("Enrich-Incident", "08584710362532413637129498231CU45", at(13, 0, 0)),
        *step("Enrich-Incident", "08584710362532413637129498231CU45", at(13, 0, 1), action="Run_query"),
        *step("Other-Team-Playbook", "08584710362532413637129498231CU46", at(5, 11, 40)),
        *step("Mapped-Playbook", "08584710362532413637129498231CU47", at(15, 0, 0)),
    )])
    database.insert("AzureActivity", [(None, row) for row in (
        *connection_write(DAY - timedelta(days=20), APP_ID),
        *workflow_write(DAY - timedelta(days=20, minutes=-5), "enrich-incident"),
        *connection_write(DAY - timedelta(days=1), OTHER_APP_ID, status="Failure"),  # a failed re-point changes nothing
    )])
    return EmbeddedLogSource(database, UNTIL)


def links_by_run(source, interval=TWO_MINUTES, connections=None, principal=PRINCIPAL):
    connections = {"Other-Team-Playbook": OTHER_APP_ID} if connections is None else connections
    links = logic_app_links(source, principal, SINCE, UNTIL, interval=interval, connections=connections)
    return {(link.step.workflow, link.step.kind, link.step.start.strftime("%H:%M:%S")): link for link in links}


def test_a_run_close_to_a_sign_in_is_a_probable_link_with_its_reason(source):
    links = links_by_run(source)
    run = links[("Get-Evidence", "run", "05:12:03")]
    assert not run.certain
    assert run.reason == "run started 40 s after a sign-in to Log Analytics API; no identity in the workflow log"
    assert run.step.status == "Failed"  # the completion record's status, not the start's "Running"
    action = links[("Get-Evidence", "action", "05:12:04")]
    assert (action.certain, action.step.action, action.reason) == (
        False, "Run_query_and_list_results",
        "action started 41 s after a sign-in to Log Analytics API; no identity in the workflow log")


def test_a_run_too_far_from_any_sign_in_is_not_linked(source):
    assert not any(workflow == "Nightly-Report" for workflow, _, _ in links_by_run(source))


def test_a_run_after_a_sign_in_to_a_resource_connectors_do_not_call_is_not_linked(source):
    assert not any(workflow == "Invoice-Export" for workflow, _, _ in links_by_run(source))


def test_a_workflow_known_to_sign_in_as_another_principal_is_not_linked(source):
    assert not any(workflow == "Other-Team-Playbook" for workflow, _, _ in links_by_run(source))
    unmapped = links_by_run(source, connections={})
    assert not unmapped[("Other-Team-Playbook", "run", "05:11:40")].certain


def test_the_connection_written_in_the_activity_log_makes_the_link_certain(source):
    links = links_by_run(source)
    near = links[("Enrich-Incident", "run", "07:00:10")]
    assert near.certain
    assert near.reason == ("run started 10 s after a sign-in to Log Analytics API; its API connection "
                           "azuremonitorlogs-soc signs in as this service principal (activity log: connection "
                           "written 2026-02-18 00:00 UTC)")
    later = links[("Enrich-Incident", "run", "13:00:00")]
    assert later.certain and later.reason.startswith("its API connection azuremonitorlogs-soc signs in as")
    assert ("Enrich-Incident", "action", "13:00:01") not in links  # no sign-in near: which step used it is unknown


def test_the_connection_is_recognised_by_app_id_as_well(source):
    links = links_by_run(source, principal=APP_ID)
    assert links[("Enrich-Incident", "run", "13:00:00")].certain
    every_id = links_by_run(source, principal=[PRINCIPAL.upper(), APP_ID])  # as the CLI passes a resolved identity
    assert every_id.keys() == links_by_run(source).keys()


def test_a_workflow_mapped_in_the_settings_is_certain(source):
    links = links_by_run(source, connections={"Mapped-Playbook": APP_ID.upper()})
    mapped = links[("Mapped-Playbook", "run", "15:00:00")]
    assert mapped.certain and mapped.reason == "LOGIC_APP_CONNECTIONS maps Mapped-Playbook to this service principal"
    assert ("Mapped-Playbook", "run", "15:00:00") not in links_by_run(source)


def test_the_interval_is_settable(source):
    assert ("Get-Evidence", "run", "05:12:03") not in links_by_run(source, interval=timedelta(seconds=30))
    assert ("Nightly-Report", "run", "05:30:00") in links_by_run(source, interval=timedelta(minutes=20))


def test_another_principal_gets_none_of_these_runs(source):
    assert links_by_run(source, principal="99999999-9999-4999-8999-999999999999") == {}


def test_trail_rows_say_probable_or_certain_and_have_no_ip(source):
    links = logic_app_links(source, PRINCIPAL, SINCE, UNTIL, interval=TWO_MINUTES, connections={})
    events = {event.action: event for event in trail_events(links)}
    probable = events["run of Get-Evidence Failed"]
    assert (probable.source, probable.ip, probable.time) == ("logic app", "", at(5, 12, 3))
    assert probable.detail.startswith("PROBABLE link: run started 40 s after") and "CU41" in probable.detail
    assert events["run of Enrich-Incident Succeeded"].detail.startswith("certain link: ")


def test_the_queries_pass_microsofts_kusto_parser():
    queries = {"sign-ins": SIGN_INS, "workflow steps": WORKFLOW_STEPS, "resource writes": RESOURCE_WRITES}
    header = ('let Principals = dynamic(["x"]); let WindowStart = datetime(2026-01-01T00:00:00Z); '
              "let WindowEnd = datetime(2026-01-02T00:00:00Z); let RunSlack = 1d;")
    checks = validate_queries(list(queries.items()), headers=dict.fromkeys(queries, header))
    assert {name: check.errors for name, check in checks.items() if check.errors} == {}


def test_connector_resources_are_keyed_by_lower_case_app_id():
    assert all(app_id == app_id.lower() for app_id in CONNECTOR_RESOURCES)
    assert CONNECTOR_RESOURCES[LOG_ANALYTICS] == "Log Analytics API"


def test_the_cli_refuses_a_bad_interval(tmp_path):
    result = CliRunner().invoke(app, ["trail", PRINCIPAL, "--logs", str(tmp_path), "--logic-app-interval", "soon"])
    assert result.exit_code == 2 and "--logic-app-interval" in result.output and "not a timespan" in result.output


def test_trail_on_the_sample_tenant_shows_the_playbook_runs_beside_its_sign_ins(sample_tenant):
    manifest = json.loads((sample_tenant / "manifest.json").read_text())
    story = next(s for s in manifest["scenarios"] if s["id"] == "playbook-reads-secrets")
    result = CliRunner(env={"COLUMNS": "250"}).invoke(app, [
        "trail", story["principal_id"], "--logs", str(sample_tenant / "logs"), "--now", "2026-03-15T06:00:00Z",
        "--since", "2026-03-13T02:00:00Z"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    stolen = next(i for i, line in enumerate(lines) if "action Get_secrets in Get-SentinelAlertsEvidence" in line)
    assert "PROBABLE link: action started" in lines[stolen] and "a sign-in to Azure Key Vault" in lines[stolen]
    key_vault_sign_in = next(i for i, line in enumerate(lines) if "│ sign-in to Azure Key Vault" in line)
    first_read = next(i for i, line in enumerate(lines) if "│ SecretGet" in line)
    assert stolen < key_vault_sign_in < first_read  # beside the sign-in it probably made, before the reads
    runs = [line for line in lines if "run of Get-SentinelAlertsEvidence" in line]
    assert runs and all("PROBABLE link: run started" in line for line in runs)
    assert re.search(r"Logic App runs and actions: 0 certain, \d+ probable", result.output)


def test_the_catalog_rule_reads_the_same_connector_resources():
    rule = yaml.safe_load((DETECTIONS_DIR / "logic_app_security_run_new_signin_source.yaml").read_text())
    assert rule["parameters"]["ConnectorResources"]["default"] == list(CONNECTOR_RESOURCES)
