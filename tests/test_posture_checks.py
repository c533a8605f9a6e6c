"""The posture checks: their own YAML cases, the inventory they read, and the boundaries spelt out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog.loader import load_catalog
from shared.directory.model import DirectorySnapshot
from shared.posture.catalog import CHECKS_DIR, load_checks
from shared.posture.inventory import InventorySettings, build_inventory, status_of
from shared.posture.run import audit_days, audit_window, evaluate, to_finding
from shared.posture.testing import run_check_test
from shared.posture.usage import SignInUsage

CHECKS = load_checks()
CASES = [(check, test) for check in CHECKS for test in check.tests]
NOW = datetime(2026, 3, 15, tzinfo=UTC)
TENANT = "7a1f0000-0000-4000-8000-000000000001"
SP_TABLE, MI_TABLE = "AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"


@pytest.mark.parametrize(("check", "case"), CASES, ids=[f"{CHECKS.paths[c.id].stem}::{t.name}" for c, t in CASES])
def test_check_case(check, case):
    outcome = run_check_test(check, case)
    assert outcome.passed, "\n".join(outcome.problems)


def test_every_check_file_loads_each_named_by_file_with_distinct_ids_from_the_detections():
    assert len(CHECKS) == len(list(CHECKS_DIR.glob("*.yaml"))) >= 13
    assert not {c.id for c in CHECKS} & {d.id for d in load_catalog()}
    assert not CHECKS.stems & {path.stem for path in load_catalog().paths.values()}
    assert all(check.kind == "Posture" for check in CHECKS)


def _snapshot(applications=(), principals=(), roles=()) -> DirectorySnapshot:
    return DirectorySnapshot.model_validate({"tenantId": TENANT, "exportedAt": NOW, "applications": list(applications),
                                             "servicePrincipals": list(principals), "directoryRoles": list(roles)})


def _usage(logs_start: datetime | None = NOW - timedelta(days=120), **kinds) -> SignInUsage:
    usage = SignInUsage(read_from=NOW - timedelta(days=91), read_until=NOW)
    if logs_start:
        usage.logs_start = {SP_TABLE: logs_start, MI_TABLE: logs_start}
    for name, values in kinds.items():
        setattr(usage, name, values)
    return usage


def _app(key_id: str, end: datetime | None, start: datetime = NOW - timedelta(days=100), **extra) -> dict:
    secret = {"keyId": key_id, "startDateTime": start}
    if end is not None:
        secret["endDateTime"] = end
    return {"id": "app-1", "appId": "appid-1", "displayName": "crm", "passwordCredentials": [secret], **extra}


SP = {"id": "sp-1", "appId": "appid-1", "displayName": "crm"}


def _run(check_stem: str, snapshot: DirectorySnapshot, usage: SignInUsage, now: datetime = NOW):
    check = CHECKS.get(check_stem)
    return evaluate([check], snapshot, usage, now, {check.id: check.values()})


# --- boundaries ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("end", "status", "days"), [
    (NOW + timedelta(hours=18), "expiring", 0),  # ends later today
    (NOW, "expired", 0),  # ended at this very moment
    (NOW - timedelta(seconds=1), "expired", -1),
    (NOW + timedelta(days=30), "expiring", 30),  # exactly 30 days
    (NOW + timedelta(days=30, hours=23), "expiring", 30),  # still the 30th calendar day
    (NOW + timedelta(days=31), "active", 31),
    (None, "no end date", None),
])
def test_status_and_days_to_expiry_count_calendar_days(end, status, days):
    assert status_of(end, NOW, 30) == (status, days)


def test_ending_today_and_in_exactly_30_days_are_expiring_a_missing_end_date_is_not():
    for end, expected in ((NOW + timedelta(hours=9), 0), (NOW + timedelta(days=30), 30)):
        result = _run("expiring_credentials", _snapshot([_app("k", end)], [SP]), _usage())
        found = [(f.entities["Credential.KeyId"], f.evidence["DaysToExpiry"]) for f in result.findings]
        assert found == [("k", expected)]
    for check in ("expiring_credentials", "expired_credentials", "credential_lifetime_over_policy"):
        assert _run(check, _snapshot([_app("k", None)], [SP]), _usage()).findings == []
    (record,) = build_inventory(_snapshot([_app("k", None)], [SP]), _usage(), NOW)
    assert (record.status, record.days_to_expiry, record.lifetime_days) == ("no end date", None, None)


def test_a_certificate_seen_only_by_thumbprint_is_matched_in_any_case_and_counts_as_used():
    app = {"id": "app-1", "appId": "appid-1", "displayName": "crm", "keyCredentials": [
        {"keyId": "c-1", "customKeyIdentifier": "0a1B2c3D", "startDateTime": NOW - timedelta(days=200),
         "endDateTime": NOW + timedelta(days=100)}]}
    used = NOW - timedelta(days=2)
    usage = _usage(thumbprints={("sp-1", "0A1B2C3D"): used}, principals={"sp-1": used})
    (record,) = build_inventory(_snapshot([app], [SP]), usage, NOW)
    assert record.last_used == used and record.thumbprint == "0a1B2c3D"
    assert _run("unused_credentials", _snapshot([app], [SP]), usage).findings == []


def test_a_deleted_owner_is_not_listed_and_an_owner_the_snapshot_still_lists_is_kept_as_it_says():
    graph = {"id": "a-1", "resourceId": "g", "resourceDisplayName": "Microsoft Graph", "appRoleId": "r",
             "permission": "Application.ReadWrite.All"}
    privileged = {**SP, "appRoleAssignments": [graph]}
    only_deleted = _snapshot([_app("k", NOW + timedelta(days=90), owners=[])], [privileged])
    assert _run("privileged_identity_owned_by_users", only_deleted, _usage()).findings == []
    (record,) = build_inventory(only_deleted, _usage(), NOW)
    assert record.owners == [] and record.privileged
    listed = _snapshot([_app("k", NOW + timedelta(days=90), owners=[{"id": "u-gone", "type": "user"}])], [privileged])
    (finding,) = _run("privileged_identity_owned_by_users", listed, _usage()).findings
    assert finding.evidence["Owners"] == [{"id": "u-gone", "name": "u-gone", "type": "user"}]


def test_lifetime_at_the_limit_is_within_policy():
    at_limit = _app("k", NOW + timedelta(days=80), start=NOW - timedelta(days=100))  # exactly 180 days
    assert _run("credential_lifetime_over_policy", _snapshot([at_limit], [SP]), _usage()).findings == []
    over = _app("k", NOW + timedelta(days=81), start=NOW - timedelta(days=100))
    assert len(_run("credential_lifetime_over_policy", _snapshot([over], [SP]), _usage()).findings) == 1


def test_unused_is_only_claimed_when_the_logs_reach_back_over_the_horizon():
    snapshot = _snapshot([_app("k", NOW + timedelta(days=90))], [SP])
    covered = _run("unused_credentials", snapshot, _usage(NOW - timedelta(days=30)))
    assert [(f.severity, f.evidence["UsageKnown"]) for f in covered.findings] == [("Low", True)]
    short = _run("unused_credentials", snapshot, _usage(NOW - timedelta(days=20)))
    assert [f.severity for f in short.findings] == ["Informational"]
    assert "logs start at 2026-02-23" in short.findings[0].summary
    no_logs = _run("unused_credentials", snapshot, _usage(None))
    assert [f.severity for f in no_logs.findings] == ["Informational"]
    assert "(no sign-in logs)" in no_logs.findings[0].summary


def test_managed_identity_certificates_are_in_the_inventory_but_no_check_reports_them():
    mi = {"id": "mi-1", "appId": "appid-mi", "displayName": "uami-batch", "servicePrincipalType": "ManagedIdentity",
          "keyCredentials": [{"keyId": "k-msi", "startDateTime": NOW - timedelta(days=200),
                              "endDateTime": NOW - timedelta(days=110)}]}
    snapshot = _snapshot([], [mi])
    (record,) = build_inventory(snapshot, _usage(), NOW)
    assert (record.principal_type, record.held_on, record.status) == ("managed identity", "servicePrincipal", "expired")
    assert evaluate(list(CHECKS), snapshot, _usage(), NOW, {c.id: c.values() for c in CHECKS}).findings == []


def test_inventory_lists_application_service_principal_and_federated_credentials_with_owners_and_privilege():
    app = _app("k-app", NOW + timedelta(days=90), owners=[{"id": "u-1", "userPrincipalName": "alice@contoso.com"}],
               federatedIdentityCredentials=[{"id": "f-1", "name": "github", "issuer": "https://token.actions",
                                              "subject": "repo:contoso/app:ref:refs/heads/main"}])
    sp = {**SP, "owners": [{"id": "u-1", "userPrincipalName": "alice@contoso.com"},
                           {"id": "u-2", "displayName": "Bob"}],
          "passwordCredentials": [{"keyId": "k-sp", "startDateTime": NOW - timedelta(days=1)}]}
    role = {"id": "r", "displayName": "Application Administrator",
            "roleTemplateId": "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "members": [{"id": "sp-1"}]}
    usage = _usage(key_ids={("sp-1", "k-app"): NOW - timedelta(hours=3)}, federated={("sp-1", "f-1"): NOW})
    records = build_inventory(_snapshot([app], [sp], [role]), usage, NOW, InventorySettings(unused_days=30))
    assert [(r.held_on, r.type, r.key_id) for r in records] == [
        ("application", "secret", "k-app"), ("application", "federated", "f-1"), ("servicePrincipal", "secret", "k-sp")]
    assert all(r.principal_id == "sp-1" and r.application_id == "app-1" for r in records)
    assert [o.name for o in records[0].owners] == ["alice@contoso.com", "Bob"]
    assert records[0].privileged_reasons == ["directory role Application Administrator"]
    assert records[0].last_used == NOW - timedelta(hours=3) and records[1].last_used == NOW
    assert records[1].subject == "repo:contoso/app:ref:refs/heads/main" and records[1].status == "no end date"
    assert all(r.usage_known for r in records)


# --- findings and their window ---------------------------------------------------------------------------


def test_a_finding_belongs_to_the_audit_day_so_the_same_day_is_idempotent_and_the_next_recurs():
    snapshot = _snapshot([_app("k", NOW - timedelta(days=3))], [SP])
    check = CHECKS.get("expired_credentials")
    morning = _run("expired_credentials", snapshot, _usage(), NOW + timedelta(hours=6)).findings[0]
    evening = _run("expired_credentials", snapshot, _usage(), NOW + timedelta(hours=22)).findings[0]
    tomorrow = _run("expired_credentials", snapshot, _usage(), NOW + timedelta(days=1, hours=6)).findings[0]
    assert (morning.window_start, morning.window_end) == (NOW - timedelta(days=1), NOW) == audit_window(NOW)
    assert morning.occurrence_id == evening.occurrence_id != tomorrow.occurrence_id
    assert morning.id == tomorrow.id
    assert morning.detection_id == check.id and morning.principal_id == "sp-1"
    assert morning.entities == {"Account.AadUserId": "sp-1", "Credential.KeyId": "k"}
    assert {"ServicePrincipalName", "KeyId", "CredentialName", "CredentialType", "EndDateTime", "Owners",
            "LastUsed"} <= set(morning.evidence)
    hit_severity = to_finding(check, _hit(), NOW).severity
    assert hit_severity == check.severity


def _hit():
    from shared.posture.checks import Hit

    return Hit("sp-1", "crm", "why")


def test_audit_days_first_run_judges_the_latest_day_then_catches_up_missed_days():
    delay, lookback = timedelta(minutes=15), timedelta(days=7)
    at = NOW + timedelta(hours=6)
    assert audit_days(None, at, delay, lookback) == [NOW]
    assert audit_days(NOW, at, delay, lookback) == [NOW]  # nothing new: the latest day again
    assert audit_days(NOW - timedelta(days=2), at, delay, lookback) == [NOW - timedelta(days=1), NOW]
    assert audit_days(None, NOW + timedelta(minutes=10), delay, lookback) == [NOW - timedelta(days=1)]


def test_a_check_that_raises_is_recorded_and_the_others_still_run(monkeypatch):
    from shared.posture import checks as functions

    def broken(*args):
        raise RuntimeError("boom")

    monkeypatch.setitem(functions.CHECKS, "expired_credentials", broken)
    snapshot = _snapshot([_app("k", NOW - timedelta(days=3))], [SP])
    chosen = [CHECKS.get("expired_credentials"), CHECKS.get("multiple_active_secrets")]
    result = evaluate(chosen, snapshot, _usage(), NOW, {c.id: c.values() for c in chosen})
    assert result.errors == {chosen[0].id: "RuntimeError: boom"} and result.inventory


def test_parameters_are_overridable_and_checked():
    check = CHECKS.get("credential_lifetime_over_policy")
    assert check.values({"max_secret_days": 90})["max_secret_days"] == 90
    with pytest.raises(ValueError, match="no such parameter"):
        check.values({"max_password_days": 90})
    with pytest.raises(ValueError, match="must be int"):
        check.values({"max_secret_days": "90"})
