"""The reach benchmark's own collection (benchmarks/compat_queries): the queries that run offline give exactly the
rows their KQL means on hand-made audit records, and every one that does not run is refused naming the feature it
needs and where it is, never answered wrongly. Microsoft Sentinel's queries are measured only from a local clone of
Azure/Azure-Sentinel: the benchmark lists their paths, reads them from the clone and names any path it lacks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.reach import compat_queries, main, measure, sentinel_paths, sentinel_queries
from shared.hunt.outcome import CASE_ONLY, FAILED, RAN, REFUSED
from shared.logsource.database import LogDatabase

NOW = datetime(2026, 3, 14, 6, 0, tzinfo=UTC)
CRED = "Add service principal credentials"
ROLE_WRITE = "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE"  # as Azure writes it; the query asks with =~


def _ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def _sp_signin(hours: float, name: str, sp_id: str, ip: str, result: str, country: str) -> tuple:
    return (None, {"TimeGenerated": _ago(hours), "ServicePrincipalName": name, "ServicePrincipalId": sp_id,
                   "AppId": f"app-of-{sp_id}", "IPAddress": ip, "ResultType": result,
                   "LocationDetails": f'{{"countryOrRegion": "{country}"}}'})


def _mi_signin(hours: float, name: str, resource: str) -> tuple:
    return (None, {"TimeGenerated": _ago(hours), "ServicePrincipalName": name, "ResourceDisplayName": resource,
                   "ResultType": "0"})


def _activity(hours: float, caller: str, operation: str, status: str, resource_id: str) -> tuple:
    return (None, {"TimeGenerated": _ago(hours), "Caller": caller, "OperationNameValue": operation,
                   "ActivityStatusValue": status, "_ResourceId": resource_id})


def _audit(hours: float, operation: str, initiated_by: dict, targets: list, correlation: str) -> tuple:
    return (None, {"TimeGenerated": _ago(hours), "OperationName": operation, "Result": "success",
                   "InitiatedBy": initiated_by, "TargetResources": targets, "CorrelationId": correlation})


def _user(upn: str, ip: str) -> dict:
    return {"user": {"userPrincipalName": upn, "ipAddress": ip}}


SP_SIGNINS = [
    _sp_signin(5.5, "build-agent", "sp-2", "192.168.1.5", "0", "US"),  # before its credential was added
    _sp_signin(5, "build-agent", "sp-2", "198.51.100.9", "7000222", "US"),
    _sp_signin(4, "build-agent", "sp-2", "10.1.2.3", "7000215", "US"),
    _sp_signin(3.5, "build-agent", "sp-2", "172.32.0.1", "7000215", "US"),  # just past 172.16.0.0/12: public
    _sp_signin(3.2, "build-agent", "sp-2", "172.31.255.254", "7000215", "US"),  # its last address: private
    _sp_signin(3, "payroll-sync", "sp-1", "203.0.113.7", "7000215", "NL"),
    _sp_signin(2.5, "payroll-sync", "sp-1", "203.0.113.7", "7000222", "NL"),
    _sp_signin(2, "payroll-sync", "sp-1", "203.0.113.7", "0", "NL"),
    _sp_signin(1, "payroll-sync", "sp-1", "10.1.2.3", "0", "DE"),  # its id matches a credential, its address not
    _sp_signin(30, "payroll-sync", "sp-1", "198.51.100.50", "7000215", "FR"),  # outside the day
]
MI_SIGNINS = [
    _mi_signin(1, "vm-backup", "Azure Key Vault"),
    _mi_signin(2, "vm-backup", "Azure Storage"),
    _mi_signin(3, "vm-backup", "Azure Key Vault"),
    _mi_signin(4, "func-app", "Microsoft Graph"),
    _mi_signin(72, "vm-backup", "Azure SQL Database"),  # outside the day
]
SCOPE = "/subscriptions/s-1/resourceGroups/{}/providers/Microsoft.Authorization/roleAssignments/{}"
ACTIVITY = [
    _activity(3, "admin@contoso.com", ROLE_WRITE, "Success", SCOPE.format("rg-web", "ra-3")),
    _activity(2, "sp-2", ROLE_WRITE, "Success", SCOPE.format("rg-a", "ra-1")),
    _activity(1, "sp-2", ROLE_WRITE, "Success", SCOPE.format("rg-b", "ra-2")),
    _activity(1.1, "sp-2", ROLE_WRITE, "Start", SCOPE.format("rg-b", "ra-2")),
    _activity(2, "sp-2", "MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE", "Success", "/subscriptions/s-1/vm"),
    _activity(40, "sp-2", ROLE_WRITE, "Success", SCOPE.format("rg-old", "ra-0")),
]
AUDIT = [
    _audit(6, CRED, _user("mallory@contoso.com", "203.0.113.7"),
           [{"id": "sp-1", "displayName": "payroll-sync", "type": "ServicePrincipal", "modifiedProperties": [
               {"displayName": "KeyDescription", "oldValue": "[]", "newValue": "[\"KeyIdentifier=k-1\"]"},
               {"displayName": "Included Updated Properties", "newValue": "\"KeyDescription\""}]}], "c-1"),
    _audit(3.8, CRED, _user("admin@fabrikam.com", "192.168.1.5"),
           [{"id": "app-2", "displayName": "build-agent-app", "type": "Application"},
            {"id": "sp-2", "displayName": "build-agent", "type": "ServicePrincipal"}], "c-2"),
    _audit(2, "Update application", {"app": {"displayName": "deployer", "servicePrincipalId": "sp-9"}},
           [{"id": "app-2", "displayName": "build-agent-app", "type": "Application"}], "c-3"),
    _audit(1, "Add owner to service principal", _user("eve@contoso.com", "198.51.100.1"), [], "c-4"),
    _audit(30, CRED, _user("eve@contoso.com", "198.51.100.1"),
           [{"id": "sp-1", "displayName": "payroll-sync", "type": "ServicePrincipal"}], "c-old"),
]


def _countries(*rows: tuple) -> list[dict]:
    return [{"ServicePrincipalName": name, "Country": country, "TimeGenerated": _ago(hours), "IPAddress": ip,
             "ResultType": result} for hours, name, ip, result, country in rows]


EXPECTED = {
    "sp_signin_countries.kql": _countries(
        (5.5, "build-agent", "192.168.1.5", "0", "US"), (5, "build-agent", "198.51.100.9", "7000222", "US"),
        (4, "build-agent", "10.1.2.3", "7000215", "US"), (3.5, "build-agent", "172.32.0.1", "7000215", "US"),
        (3.2, "build-agent", "172.31.255.254", "7000215", "US"), (3, "payroll-sync", "203.0.113.7", "7000215", "NL"),
        (2.5, "payroll-sync", "203.0.113.7", "7000222", "NL"), (2, "payroll-sync", "203.0.113.7", "0", "NL"),
        (1, "payroll-sync", "10.1.2.3", "0", "DE")),
    "sp_failures_from_public_addresses.kql": [
        {"ServicePrincipalName": "build-agent", "IPAddress": "172.32.0.1", "Failures": 1},
        {"ServicePrincipalName": "build-agent", "IPAddress": "198.51.100.9", "Failures": 1},
        {"ServicePrincipalName": "payroll-sync", "IPAddress": "203.0.113.7", "Failures": 2}],
    "mi_resources.kql": [
        {"ServicePrincipalName": "func-app", "Resources": ["Microsoft Graph"], "SignIns": 1},
        {"ServicePrincipalName": "vm-backup", "Resources": ["Azure Key Vault", "Azure Storage"], "SignIns": 3}],
    "role_assignment_writers.kql": [
        {"Caller": "admin@contoso.com", "Scopes": [SCOPE.format("rg-web", "ra-3")], "Writes": 1},
        {"Caller": "sp-2", "Scopes": [SCOPE.format("rg-a", "ra-1"), SCOPE.format("rg-b", "ra-2")], "Writes": 2}],
    "credential_targets.kql": [
        {"TimeGenerated": _ago(6), "TargetName": "payroll-sync", "TargetId": "sp-1", "CorrelationId": "c-1"},
        {"TimeGenerated": _ago(3.8), "TargetName": "build-agent", "TargetId": "sp-2", "CorrelationId": "c-2"}],
    "actor_domains.kql": [
        {"TimeGenerated": _ago(6), "Actor": "mallory@contoso.com", "Domain": "contoso.com", "OperationName": CRED,
         "FirstTarget": "payroll-sync"},
        {"TimeGenerated": _ago(3.8), "Actor": "admin@fabrikam.com", "Domain": "fabrikam.com", "OperationName": CRED,
         "FirstTarget": "build-agent-app"},
        {"TimeGenerated": _ago(1), "Actor": "eve@contoso.com", "Domain": "contoso.com",
         "OperationName": "Add owner to service principal", "FirstTarget": ""}],
    "sp_last_success_and_first_failure.kql": [
        {"ServicePrincipalName": "build-agent", "LastSuccess": _ago(5.5), "FirstFailure": _ago(5),
         "PrivateSuccessIp": "192.168.1.5", "maxif_ResultType": "7000222"},
        {"ServicePrincipalName": "payroll-sync", "LastSuccess": _ago(1), "FirstFailure": _ago(3),
         "PrivateSuccessIp": "10.1.2.3", "maxif_ResultType": "7000222"}],
    "credential_actor_details.kql": [  # the first record names one target, so it has no second: an empty string
        {"TimeGenerated": _ago(6), "Actor": "mallory@contoso.com", "LastTargetType": "", "TargetCount": 1,
         "Outcome": "success", "Agent": "not logged"},
        {"TimeGenerated": _ago(3.8), "Actor": "admin@fabrikam.com", "LastTargetType": "ServicePrincipal",
         "TargetCount": 2, "Outcome": "success", "Agent": "not logged"}],
    "modified_properties.kql": [
        {"TimeGenerated": _ago(6), "OperationName": CRED, "Property": "KeyDescription"},
        {"TimeGenerated": _ago(6), "OperationName": CRED, "Property": "Included Updated Properties"}],
    "sp_signins_by_app_id.kql": [
        {"AppID": "app-of-sp-1", "SignIns": 4, "Addresses": ["10.1.2.3", "203.0.113.7"]},
        {"AppID": "app-of-sp-2", "SignIns": 5,
         "Addresses": ["10.1.2.3", "172.31.255.254", "172.32.0.1", "192.168.1.5", "198.51.100.9"]}],
    "credential_then_signin_same_address.kql": [
        {"AddedAt": _ago(6), "SignedInAt": _ago(3), "ServicePrincipalName": "payroll-sync",
         "Actor": "mallory@contoso.com", "ActorIp": "203.0.113.7"},
        {"AddedAt": _ago(6), "SignedInAt": _ago(2.5), "ServicePrincipalName": "payroll-sync",
         "Actor": "mallory@contoso.com", "ActorIp": "203.0.113.7"},
        {"AddedAt": _ago(6), "SignedInAt": _ago(2), "ServicePrincipalName": "payroll-sync",
         "Actor": "mallory@contoso.com", "ActorIp": "203.0.113.7"}],
}
UNORDERED = {"Resources", "Scopes", "Addresses"}  # make_set and make_list promise no order
REFUSED_AT = {
    "mi_resource_results.kql": ("make_bag()", "line 4, column 23"),
    "mi_new_resources.kql": ("set_difference()", "line 9, column 25"),
    "app_ids_by_case.kql": ("column names that differ only in case", None),
    "credential_target_counts.kql": ("mv-apply", "line 4, column 3"),
}


@pytest.fixture(scope="module")
def database() -> LogDatabase:
    database = LogDatabase()
    for table, rows in (("AADServicePrincipalSignInLogs", SP_SIGNINS), ("AADManagedIdentitySignInLogs", MI_SIGNINS),
                        ("AzureActivity", ACTIVITY), ("AuditLogs", AUDIT)):
        assert database.insert(table, rows) == []
    return database


@pytest.fixture(scope="module")
def reach(database):
    return measure(database, NOW, compat_queries(), rewriting=True)


def _comparable(rows: list[dict], columns: list[str]) -> list[dict]:
    picked = [{column: sorted(row[column]) if column in UNORDERED else row[column] for column in columns}
              for row in rows]
    return sorted(picked, key=lambda row: [str(row[column]) for column in columns])


def test_what_runs_gives_exactly_the_rows_its_kql_means(reach):
    ran = {o.query.path.name: o.rows for o in reach.outcomes if o.status == RAN}
    assert set(ran) == set(EXPECTED), "a query runs offline now or no longer does: give it expected rows here"
    for name, rows in EXPECTED.items():
        columns = list(rows[0])
        assert [list(row) for row in ran[name]] == [columns] * len(ran[name]), name  # and in this order
        assert _comparable(ran[name], columns) == _comparable(rows, columns), name


def test_every_refusal_names_the_feature_and_where(reach):
    refused = {o.query.path.name: o for o in reach.outcomes if o.status == REFUSED}
    assert set(refused) == set(REFUSED_AT)
    for name, (feature, position) in REFUSED_AT.items():
        assert refused[name].feature == feature, name
        if position is None:
            assert "'AppId' and 'AppID'" in refused[name].reason
        else:
            assert refused[name].reason.startswith(f"{feature} is not supported offline at {position}"), (
                refused[name].reason)
    assert not [o.reason for o in reach.outcomes if o.status == FAILED]


def test_the_rewrite_layer_is_what_makes_them_run(database):
    before = measure(database, NOW, compat_queries(), rewriting=False)
    assert before.counts[RAN] == 0
    assert set(before.refused_by) >= {"project-reorder", "mv-apply", "makeset()", "makelist()", "ipv4_is_private()",
                                      "path step", "maxif()", "typeof()", CASE_ONLY}


def test_the_sentinel_list_holds_paths_and_commits_only():
    paths = sentinel_paths()
    assert len(paths) >= 10 and len(set(paths)) == len(paths)
    assert all(path.endswith(".yaml") and not path.startswith("/") for path in paths)


def test_sentinel_queries_come_from_a_local_checkout_and_a_missing_path_is_named(tmp_path, sample_tenant, monkeypatch,
                                                                                   capsys):
    present, *absent = sentinel_paths()
    (tmp_path / present).parent.mkdir(parents=True)
    (tmp_path / present).write_text("name: A rule\nquery: |\n  AuditLogs\n  | take 1\n")
    queries, missing = sentinel_queries(tmp_path)
    assert [(query.name, query.text) for query in queries] == [(f"A rule ({tmp_path / present})",
                                                                 "AuditLogs\n| take 1\n")]
    assert missing == absent
    with pytest.raises(FileNotFoundError, match="not a folder"):
        sentinel_queries(tmp_path / "nowhere")

    monkeypatch.setenv("SENTINEL_REPO", str(tmp_path))
    main(["--tenant", str(sample_tenant)])
    out = capsys.readouterr().out
    assert f"Microsoft Sentinel's queries from {tmp_path}, run offline on the sample tenant (1 query)\n" in out
    assert "  after the rewrite layer:  1 ran, 0 refused, 0 failed\n" in out
    assert [line for line in out.splitlines() if "not in the checkout" in line] == [
        f"  not in the checkout: {path}" for path in absent]


def test_the_benchmark_says_how_to_measure_sentinel_when_no_checkout_is_given(sample_tenant, monkeypatch, capsys):
    monkeypatch.delenv("SENTINEL_REPO", raising=False)
    main(["--tenant", str(sample_tenant)])
    out = capsys.readouterr().out
    assert re.search(r"compatibility queries .*\(15 queries\)\n  before the rewrite layer: 0 ran", out)
    assert re.search(r"after the rewrite layer: +\d+ ran, 4 refused \(", out)
    assert ("Sentinel queries skipped: no checkout given. To measure them, clone https://github.com/Azure/"
            "Azure-Sentinel and pass --sentinel-repo DIR or set SENTINEL_REPO.") in out
