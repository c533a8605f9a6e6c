"""The findings table in the audited workspace, its data collection rule and the app's one role on it.

The table and the rule's stream declare the columns of shared/schemas/WorkloadIdentityFindings_CL.json, the
same file the sender and the Kusto validator read (written out: checkov cannot parse a lambda); these tests keep
them equal and check where each piece is deployed and wired.
"""

from __future__ import annotations

import json

from infra_helpers import FUNCTION_APP, INFRA, MAIN, app_settings, parse_file, role_assignments, unwrap

from shared.tables import SCHEMA_DIR, table_schemas

MODULE = INFRA / "modules" / "findings-table.bicep"
TABLE = "WorkloadIdentityFindings_CL"
# The column types Log Analytics tables and data collection rule streams both accept.
COLUMN_TYPES = {"boolean", "datetime", "dynamic", "int", "long", "real", "string"}
AGREED = {  # the contract with the workbook: name -> type
    "TimeGenerated": "DateTime", "FindingId": "String", "DetectionId": "String", "DetectionName": "String",
    "Severity": "String", "Status": "String", "PrincipalId": "String", "PrincipalName": "String",
    "WindowStart": "DateTime", "WindowEnd": "DateTime", "FirstSeen": "DateTime", "LastSeen": "DateTime",
    "Summary": "String", "Entities": "Dynamic", "Evidence": "Dynamic", "Change": "String", "ChangedBy": "String",
    "Comment": "String", "RunId": "String",
}


def module():
    return parse_file(MODULE)


def declared_columns() -> list[dict[str, str]]:
    return module()["variables"]["columns"]["value"]


def test_the_template_declares_the_columns_of_the_schema_file_the_code_reads():
    schema = json.loads((SCHEMA_DIR / f"{TABLE}.json").read_text())
    expected = [{"name": p["Name"], "type": p["Type"].lower()} for p in schema["Properties"]
                if p["Name"] not in ("TenantId", "Type")]  # Log Analytics adds these itself
    assert declared_columns() == expected
    assert module()["variables"]["tableName"]["value"] == TABLE == schema["Name"]


def test_the_schema_has_the_agreed_columns_and_a_change_id():
    columns = table_schemas()[TABLE].columns
    assert {name: columns[name] for name in AGREED} == AGREED
    assert columns["ChangeId"] == "String"  # one id per change: a repeated delivery is detectable


def test_declared_columns_are_valid_for_the_table_and_the_stream():
    columns = declared_columns()
    assert {c["name"] for c in columns} >= set(AGREED)
    assert not {"TenantId", "Type"} & {c["name"] for c in columns}
    assert {c["type"] for c in columns} <= COLUMN_TYPES
    assert all(c["name"] == "TimeGenerated" or not c["name"].startswith("_") for c in columns)


def test_the_table_and_the_stream_use_those_columns():
    resources = module()["resources"]
    table = resources["table"]["config"]
    assert table["parent"] == "workspace" and table["name"] == "tableName"
    assert table["properties"]["schema"] == {"name": "tableName", "columns": "columns"}
    rule = resources["rule"]["config"]
    assert rule["kind"] == "Direct"  # its own logs ingestion endpoint, no data collection endpoint
    assert rule["properties"]["streamDeclarations"] == {"'${streamName}'": {"columns": "columns"}}
    (flow,) = rule["properties"]["dataFlows"]
    assert flow["streams"] == ["streamName"] and flow["outputStream"] == "streamName"
    (destination,) = rule["properties"]["destinations"]["logAnalytics"]
    assert flow["destinations"] == [destination["name"]]
    assert module()["variables"]["streamName"]["value"] == "Custom-${tableName}"


def test_the_app_may_send_to_that_rule_and_nothing_else():
    assert role_assignments(module()) == {("Monitoring Metrics Publisher", "Microsoft.Insights/dataCollectionRules")}


def test_main_deploys_it_beside_the_audited_workspace_and_wires_the_settings():
    main = parse_file(MAIN)
    config = unwrap(main["modules"]["findingsTable"]["config"])
    assert config["scope"]["function"]["parameters"] == {
        "subscription_id": "workspaceSubscriptionId",
        "resource_group_name": "workspaceResourceGroupName",
    }
    assert main["parameters"]["findingsToWorkspace"]["default"] is True
    params = main["modules"]["functionApp"]["config"]["params"]
    for param, output in (("findingsIngestionEndpoint", "ingestionEndpoint"),
                          ("findingsRuleImmutableId", "ruleImmutableId")):
        chosen = params[param]["operator"]["operands"]
        assert chosen["condition"] == "findingsToWorkspace" and chosen["false_value"] == ""
        assert accessor(chosen["true_value"]) == ["findingsTable", "outputs", output]
    settings = app_settings(parse_file(FUNCTION_APP))
    assert settings["FINDINGS_INGESTION_ENDPOINT"] == "findingsIngestionEndpoint"
    assert settings["FINDINGS_DCR_IMMUTABLE_ID"] == "findingsRuleImmutableId"


def accessor(expr) -> list[str]:
    """a.b.c from pycep's nested property_accessor operators."""
    if isinstance(expr, str):
        return [expr]
    operands = expr["operator"]["operands"]
    return accessor(operands["operand_1"]) + accessor(operands["operand_2"])
