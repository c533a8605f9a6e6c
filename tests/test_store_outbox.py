"""Notification outbox: new findings queue for every channel; pending until marked; never lost or doubled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.store import TableFindingStore

NOW = datetime(2024, 5, 2, tzinfo=UTC)


def test_new_findings_are_queued_for_each_channel(finding_store: TableFindingStore, make_finding) -> None:
    high = make_finding(principal="sp1", severity="High")
    low = make_finding(principal="sp2", severity="Low")
    finding_store.upsert_findings([low, high], run_id="run1", now=NOW)
    assert [f.id for f in finding_store.pending_notifications("teams")] == [high.id, low.id]
    assert [f.id for f in finding_store.pending_notifications("email")] == [high.id, low.id]
    # a failed post marks nothing: still pending next time
    assert len(finding_store.pending_notifications("teams")) == 2
    finding_store.mark_notified("teams", [high.id, low.id])
    assert finding_store.pending_notifications("teams") == []
    assert len(finding_store.pending_notifications("email")) == 2  # channels are independent
    # recurrence and re-runs do not queue again: nothing is sent twice
    finding_store.upsert_findings([make_finding(principal="sp1", severity="High", day=1), low],
                                  run_id="run2", now=NOW + timedelta(days=1))
    assert finding_store.pending_notifications("teams") == []
    newer = make_finding(principal="sp3")
    finding_store.upsert_findings([newer], run_id="run3", now=NOW + timedelta(days=2))
    assert [f.id for f in finding_store.pending_notifications("teams")] == [newer.id]
    finding_store.mark_notified("teams", [newer.id, newer.id, "f" * 32])  # unknown/repeated ids are harmless


def test_manual_enqueue_and_unknown_channel(finding_store: TableFindingStore, make_finding) -> None:
    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    assert finding_store.pending_notifications("webhook/odd?") == []
    finding_store.enqueue_notifications("webhook/odd?", [finding.id, finding.id])
    finding_store.enqueue_notifications("webhook/odd?", ["0" * 32])  # not stored (yet): not returned
    assert [f.id for f in finding_store.pending_notifications("webhook/odd?")] == [finding.id]
    finding_store.mark_notified("webhook/odd?", [finding.id])
    assert finding_store.pending_notifications("webhook/odd?") == []
