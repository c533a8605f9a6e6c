"""A detection's severityWhenPrivileged: the enrichment, which sees the directory, raises findings
about privileged principals; the query cannot."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from shared.audit.pipeline import AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.context import DirectoryIndex, apply_privileged_severity, enrich
from shared.directory.model import AppRoleAssignment, DirectoryRole, DirectorySnapshot, RoleMember, ServicePrincipal
from shared.findings import Finding

CATALOG = load_catalog()
WINDOW = {"window_start": datetime(2026, 3, 10, tzinfo=UTC), "window_end": datetime(2026, 3, 11, tzinfo=UTC)}


def _finding(principal: str, severity: str = "Medium", context: dict | None = None) -> Finding:
    return Finding(detection_id="d", detection_name="n", severity=severity, principal_id=principal,
                   entities={"Account.AadUserId": principal}, context=context, **WINDOW)


def test_owner_rule_declares_high_when_privileged():
    detection = CATALOG.get("owner_added_to_workload_identity")
    assert detection.severity == "Medium" and detection.severityWhenPrivileged == "High"


def test_tier0_principals_are_raised_and_others_are_not():
    detection = CATALOG.get("owner_added_to_workload_identity")
    findings = [
        _finding("a", context={"privileged_permissions": ["RoleManagement.ReadWrite.Directory"],
                               "directory_roles": [], "tier": 0}),
        _finding("b", context={"privileged_permissions": [], "directory_roles": ["Directory Writers"], "tier": 0}),
        _finding("c", context={"privileged_permissions": [], "directory_roles": [], "tier": 1}),
        _finding("d", context={"privileged_permissions": [], "directory_roles": [], "tier": None}),
        _finding("e", context={"deleted": True, "looked_up": "e"}),
        _finding("f", context=None),
    ]
    assert [f.severity for f in apply_privileged_severity(detection, findings)] == \
        ["High", "High", "Medium", "Medium", "Medium", "Medium"]


def test_the_enrichment_gives_the_tier_the_raise_reads():
    """Directory Writers was missing from the old hand list: a member of it is tier 0 now and raised; a holder of
    Mail.Send (tier 1) is no longer raised."""
    snapshot = DirectorySnapshot(tenantId="t", exportedAt=datetime(2026, 3, 10, tzinfo=UTC), servicePrincipals=[
        ServicePrincipal(id="sp-w", appId="app-w", displayName="writer"),
        ServicePrincipal(id="sp-m", appId="app-m", displayName="mailer", appRoleAssignments=[
            AppRoleAssignment(id="a", resourceId="graph", resourceDisplayName="Microsoft Graph",
                              appRoleId="b633e1c5-b582-4048-a93e-9f11b44c7e96", permission="Mail.Send")])],
        directoryRoles=[DirectoryRole(id="r", displayName="Directory Writers", members=[RoleMember(id="sp-w")],
                                      roleTemplateId="9360feb5-f418-4baa-8175-e2a00bac4301")])
    findings = enrich([_finding("sp-w"), _finding("sp-m")], DirectoryIndex(snapshot))
    assert [f.context["tier"] for f in findings] == [0, 1]
    raised = apply_privileged_severity(CATALOG.get("owner_added_to_workload_identity"), findings)
    assert [f.severity for f in raised] == ["High", "Medium"]


def test_never_lowers_and_rules_without_the_field_are_untouched():
    owner = CATALOG.get("owner_added_to_workload_identity")
    other = CATALOG.get("sp_signin_failures")
    privileged = {"privileged_permissions": ["Application.ReadWrite.All"], "directory_roles": [], "tier": 0}
    assert other.severityWhenPrivileged is None
    assert apply_privileged_severity(other, [_finding("a", context=privileged)])[0].severity == "Medium"
    high = _finding("a", severity="High", context=privileged)
    assert apply_privileged_severity(owner.model_copy(update={"severityWhenPrivileged": "Low"}), [high])[0].severity \
        == "High"


def test_the_audit_pipeline_raises_findings_after_enriching_them():
    source = inspect.getsource(AuditPipeline._persist)
    assert source.index("enrich(") < source.index("apply_privileged_severity(detected.detection, findings)") \
        < source.index("upsert_findings")
