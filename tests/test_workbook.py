"""The Azure Monitor / Sentinel workbook (infra/workbook/workload-identity-auditor.json): its shape is that of
Microsoft's published workbook templates (Notebook/1.0 with KqlItem/1.0 queries against a Log Analytics
workspace), every query passes Microsoft's Kusto parser against the tables' real schemas (the findings table
included), the credential hygiene section names posture checks that exist, and the Bicep module deploys this
very file."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shared.kql.validator import validate_queries
from shared.posture.catalog import load_checks

ROOT = Path(__file__).resolve().parent.parent
WORKBOOK = ROOT / "infra" / "workbook" / "workload-identity-auditor.json"
MODULE = ROOT / "infra" / "modules" / "workbook.bicep"
WORKSPACES = "microsoft.operationalinsights/workspaces"
TEXT, QUERY, PARAMETERS = 1, 3, 9
GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


@pytest.fixture(scope="module")
def workbook() -> dict:
    return json.loads(WORKBOOK.read_text(encoding="utf-8"))


def queries(workbook: dict) -> dict[str, str]:
    return {item["name"]: item["content"]["query"] for item in workbook["items"] if item["type"] == QUERY}


def test_the_workbook_has_the_shape_of_microsofts_templates(workbook):
    assert workbook["version"] == "Notebook/1.0"
    names = [item["name"] for item in workbook["items"]]
    assert len(names) == len(set(names)), "item names must be unique"
    assert {item["type"] for item in workbook["items"]} <= {TEXT, QUERY, PARAMETERS}
    parameters = {parameter["name"] for item in workbook["items"] if item["type"] == PARAMETERS
                  for parameter in item["content"]["parameters"]}
    offenders = []
    for item in workbook["items"]:
        content = item["content"]
        if item["type"] == QUERY:
            time = content.get("timeContextFromParameter")
            if (content["version"], content["queryType"], content["resourceType"]) != ("KqlItem/1.0", 0, WORKSPACES) \
                    or not content.get("title") or (time not in parameters if time else "timeContext" not in content):
                offenders.append(item["name"])
        if item["type"] == PARAMETERS and any(p["version"] != "KqlParameterItem/1.0" or not re.fullmatch(GUID, p["id"])
                                              for p in content["parameters"]):
            offenders.append(item["name"])
    assert not offenders, f"items unlike Microsoft's templates: {offenders}"


def test_it_covers_what_the_issue_asks_for(workbook):
    names = set(queries(workbook))
    assert {"open-by-severity", "open-trend", "newest-high", "credential-hygiene", "top-identities",
            "signin-failures"} <= names


def test_every_query_passes_microsofts_kusto_parser(workbook):
    checks = validate_queries(list(queries(workbook).items()))
    failures = [f"{name} line {d.line}:{d.column} {d.code} {d.message}" for name, check in checks.items()
                for d in check.diagnostics]
    assert not failures, "\n".join(failures)


def test_the_findings_sections_read_the_findings_table_and_the_failures_the_sign_in_tables(workbook):
    found = queries(workbook)
    for name in ("open-by-severity", "open-trend", "newest-high", "credential-hygiene", "top-identities"):
        assert "WorkloadIdentityFindings_CL" in found[name], name
    assert "AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs" in found["signin-failures"]
    assert '"7000222", "The client secret has expired"' in found["signin-failures"]


def test_credential_hygiene_names_existing_credential_posture_checks(workbook):
    query = queries(workbook)["credential-hygiene"]
    named = set(re.findall(rf'"({GUID})"', query))
    known = {check.id: check.name for check in load_checks()}
    assert named and named <= set(known), f"unknown posture checks: {sorted(named - set(known))}"
    assert all("credential" in known[check_id].lower() or "secret" in known[check_id].lower() for check_id in named)


def test_the_bicep_module_deploys_this_file_against_the_audited_workspace():
    module = MODULE.read_text(encoding="utf-8")
    assert "resource workbook 'Microsoft.Insights/workbooks@2023-06-01'" in module
    assert "loadTextContent('../workbook/workload-identity-auditor.json')" in module
    assert "sourceId: workspaceResourceId" in module
    main = (ROOT / "infra" / "main.bicep").read_text(encoding="utf-8")
    assert "module workbook 'modules/workbook.bicep'" in main


# --- what the findings sections count, run on the embedded engine over a change log --------------------------------

NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
EXPIRING = "de5ca5b2-fec0-47b5-9544-2ad28e2529c7"


def change(days_ago: float, finding: str, severity: str, status: str, change: str, principal: str = "sp1",
           detection: str = EXPIRING) -> dict:
    at = (NOW - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
    return {"TimeGenerated": at, "FindingId": finding, "DetectionId": detection, "DetectionName": "Credential "
            "expiring soon", "Severity": severity, "Status": status, "PrincipalId": principal,
            "PrincipalName": f"name-{principal}", "WindowStart": at, "WindowEnd": at, "FirstSeen": at, "LastSeen": at,
            "Summary": f"{finding} summary", "Entities": {}, "Evidence": {}, "Change": change, "ChangedBy": "",
            "Comment": "", "RunId": "run"}


@pytest.fixture(scope="module")
def findings_log(tmp_path_factory):
    """a: High, new 5 days ago, resolved 2 days ago; b: High, new 4 days ago, acknowledged a day ago;
    c: Low on another identity, new 3 days ago; d: Medium, false positive, then recurred (new again) today."""
    from shared.logsource.embedded import EmbeddedLogSource

    rows = [change(5, "a", "High", "new", "new"), change(2, "a", "High", "resolved", "triage"),
            change(4, "b", "High", "new", "new"), change(1, "b", "High", "acknowledged", "triage"),
            change(3, "c", "Low", "new", "new", principal="sp2", detection="other"),
            change(6, "d", "Medium", "false_positive", "triage", detection="other"),
            change(0.5, "d", "Medium", "new", "recurred", detection="other")]
    folder = tmp_path_factory.mktemp("findings-log")
    (folder / "WorkloadIdentityFindings_CL.json").write_text("\n".join(json.dumps(row) for row in rows))
    return EmbeddedLogSource.from_folder(folder, NOW)[0]


def run(source, workbook: dict, name: str) -> list[dict]:
    return source.query(queries(workbook)[name], NOW - timedelta(days=90), NOW)


def test_a_finding_counts_as_its_latest_change_says(findings_log, workbook):
    assert [(row["Severity"], row["Open"]) for row in run(findings_log, workbook, "open-by-severity")] == [
        ("High", 1), ("Medium", 1), ("Low", 1), ("Informational", 0)]
    assert [row["FindingId"] for row in run(findings_log, workbook, "newest-high")] == ["b"]
    top = {row["Identity"]: (row["Open"], row["High"]) for row in run(findings_log, workbook, "top-identities")}
    assert top == {"name-sp1": (2, 1), "name-sp2": (1, 0)}
    hygiene = {row["Check"]: row["Findings"] for row in run(findings_log, workbook, "credential-hygiene")}
    assert hygiene["Expiring soon"] == 1 and hygiene["Unused"] == 0 and len(hygiene) == 8


def test_the_trend_counts_what_was_open_at_the_end_of_each_day(findings_log, workbook):
    trend = {(row["Day"].date().isoformat(), row["Severity"]): row["Open"]
             for row in run(findings_log, workbook, "open-trend")}
    assert trend[("2026-03-10", "High")] == 1  # a opened
    assert trend[("2026-03-11", "High")] == 2  # a and b
    assert trend[("2026-03-13", "High")] == 1  # a resolved
    assert ("2026-03-12", "Medium") not in trend  # d was a false positive then
    assert trend[("2026-03-14", "Medium")] == 1  # d recurred
