"""A suppressed finding is stored `suppressed` with the suppression that matched, is never announced, and is new
again (and announced) once it fires with no live suppression matching it. Applied the same way by the pipeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from fakes import RecordingNotifier

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog, rule_names
from shared.directory.port import SnapshotFileDirectory
from shared.findings import SuppressedBy
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.model import Triage
from shared.suppressions.load import load_suppressions

NOW = datetime(2024, 5, 10, tzinfo=UTC)
KNOWN_GOOD = SuppressedBy(id="partner-range", reason="the partner's agents", owner="alice", until=date(2024, 6, 1))


def test_a_suppressed_finding_is_stored_suppressed_and_never_announced(finding_store, make_finding):
    quiet = make_finding("sp1").model_copy(update={"suppression": KNOWN_GOOD})
    loud = make_finding("sp2")
    result = finding_store.upsert_findings([quiet, loud], "run-1", NOW)
    assert result.new == [loud.id] and result.suppressed == [quiet.id]
    stored = finding_store.get_finding(quiet.id)
    assert stored.status == "suppressed" and stored.suppression == KNOWN_GOOD
    [entry] = stored.history
    assert (entry.by, entry.from_, entry.to) == ("wiaudit", "new", "suppressed")
    assert entry.comment == "matched suppression partner-range (owner alice, until 2024-06-01): the partner's agents"
    assert [f.id for f in finding_store.pending_notifications("teams")] == [loud.id]
    suppressed, _ = finding_store.query_findings(status="suppressed")
    assert [f.id for f in suppressed] == [quiet.id]

    again = make_finding("sp1", day=1).model_copy(update={"suppression": KNOWN_GOOD})
    assert finding_store.upsert_findings([again], "run-2", NOW + timedelta(days=1)).new == []
    assert finding_store.get_finding(quiet.id).status == "suppressed"
    assert [f.id for f in finding_store.pending_notifications("teams")] == [loud.id]


def test_once_no_suppression_matches_it_fires_as_new_and_is_announced(finding_store, make_finding):
    first = make_finding("sp1").model_copy(update={"suppression": KNOWN_GOOD})
    finding_store.upsert_findings([first], "run-1", NOW)
    expired = make_finding("sp1", day=1)  # the suppression expired (or was removed): the run left it unmarked
    result = finding_store.upsert_findings([expired], "run-2", NOW + timedelta(days=30))
    assert result.new == [first.id]
    stored = finding_store.get_finding(first.id)
    assert stored.status == "new" and stored.suppression is None and stored.occurrences == 2
    assert [(entry.from_, entry.to) for entry in stored.history] == [("new", "suppressed"), ("suppressed", "new")]
    assert "suppression partner-range ended 2024-06-01" in stored.history[-1].comment
    assert [f.id for f in finding_store.pending_notifications("email")] == [first.id]


def test_a_queued_finding_suppressed_before_delivery_is_not_announced(finding_store, make_finding):
    finding = make_finding("sp1")
    finding_store.upsert_findings([finding], "run-1", NOW)
    finding_store.upsert_findings([make_finding("sp1", day=1).model_copy(update={"suppression": KNOWN_GOOD})],
                                  "run-2", NOW + timedelta(days=1))
    assert finding_store.pending_notifications("teams") == []


def test_triage_cannot_set_suppressed(finding_store, make_finding):
    finding = make_finding("sp1")
    finding_store.upsert_findings([finding], "run-1", NOW)
    with pytest.raises(ValueError, match="only by a suppression file"):
        finding_store.triage(finding.id, Triage(status="suppressed", by="bob"), NOW)


def test_the_pipeline_applies_suppressions_and_counts_them(sample_tenant, sample_source, finding_store,
                                                           tmp_path: Path):
    detection = load_catalog().get("workload_signin_new_network")
    (tmp_path / "billing-egress.yaml").write_text(
        "detections: [workload_signin_new_network]\nmatch: {principal: deploy-billing, asn: 208323}\n"
        "reason: deploy-billing moved to a new hosting provider\nowner: ops@contoso.com\nuntil: 2026-04-30\n",
        encoding="utf-8")
    (tmp_path / "old-vendor.yaml").write_text(
        "detections: [workload_signin_new_network]\nmatch: {principal: hr-sync}\nreason: vendor trial\n"
        "owner: bob@contoso.com\nuntil: 2026-03-01\n", encoding="utf-8")
    suppressions = load_suppressions(tmp_path, rule_names(), date(2026, 3, 15))
    teams = RecordingNotifier("teams")
    outcome = AuditPipeline([detection], sample_source, SnapshotFileDirectory(sample_tenant / "directory.json"),
                            finding_store, [teams], clock=lambda: SAMPLE_NOW, checks=[],
                            config=AuditConfig(max_lookback=timedelta(days=2)), suppressions=suppressions).run()
    stored, _ = finding_store.query_findings(detection=detection.id)
    status = {finding.principal_name: finding.status for finding in stored}
    assert status == {"payroll-sync": "new", "deploy-billing": "suppressed"}  # same ASN, other identity: a finding
    assert outcome.run.counts[detection.id] == {"findings": 2, "new": 1, "suppressed": 1}
    assert [f.principal_name for f in teams.sent[0].findings] == ["payroll-sync"]
    [expired] = teams.sent[0].sections
    assert expired.title == "Expired suppressions"
    assert expired.lines == ["old-vendor (owner bob@contoso.com) ended 2026-03-01: vendor trial; renew it or delete "
                             "old-vendor.yaml"]
    billing = next(finding for finding in stored if finding.principal_name == "deploy-billing")
    assert billing.suppression.id == "billing-egress"
