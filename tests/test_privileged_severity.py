"""A detection's severityWhenPrivileged: the enrichment, which sees the directory, raises findings
about privileged principals; the query cannot."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime

from shared.audit.pipeline import AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.context import apply_privileged_severity
from shared.findings import Finding

CATALOG = load_catalog()
WINDOW = {"window_start": datetime(2026, 3, 10, tzinfo=UTC), "window_end": datetime(2026, 3, 11, tzinfo=UTC)}


def _finding(principal: str, severity: str = "Medium", context: dict | None = None) -> Finding:
    return Finding(detection_id="d", detection_name="n", severity=severity, principal_id=principal,
                   entities={"Account.AadUserId": principal}, context=context, **WINDOW)


def test_owner_rule_declares_high_when_privileged():
    detection = CATALOG.get("owner_added_to_workload_identity")
    assert detection.severity == "Medium" and detection.severityWhenPrivileged == "High"


def test_privileged_permissions_or_directory_roles_raise_the_severity():
    detection = CATALOG.get("owner_added_to_workload_identity")
    findings = [
        _finding("a", context={"privileged_permissions": ["RoleManagement.ReadWrite.Directory"],
                               "directory_roles": []}),
        _finding("b", context={"privileged_permissions": [], "directory_roles": ["Global Administrator"]}),
        _finding("c", context={"privileged_permissions": [], "directory_roles": []}),
        _finding("d", context={"deleted": True, "looked_up": "d"}),
        _finding("e", context=None),
    ]
    assert [f.severity for f in apply_privileged_severity(detection, findings)] == \
        ["High", "High", "Medium", "Medium", "Medium"]


def test_never_lowers_and_rules_without_the_field_are_untouched():
    owner = CATALOG.get("owner_added_to_workload_identity")
    other = CATALOG.get("sp_signin_failures")
    privileged = {"privileged_permissions": ["Mail.Send"], "directory_roles": []}
    assert other.severityWhenPrivileged is None
    assert apply_privileged_severity(other, [_finding("a", context=privileged)])[0].severity == "Medium"
    high = _finding("a", severity="High", context=privileged)
    assert apply_privileged_severity(owner.model_copy(update={"severityWhenPrivileged": "Low"}), [high])[0].severity \
        == "High"


def test_the_audit_pipeline_raises_findings_after_enriching_them():
    source = inspect.getsource(AuditPipeline._persist)
    assert source.index("enrich(") < source.index("apply_privileged_severity(detected.detection, findings)") \
        < source.index("upsert_findings")
