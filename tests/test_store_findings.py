"""Storing findings on real Azurite: idempotent re-runs, recurrence, triage, batching, get."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.findings import Finding
from shared.store import FindingChanged, StoredFinding, TableFindingStore, Triage
from shared.store.codec import shard

NOW = datetime(2024, 5, 2, 7, 0, tzinfo=UTC)


def test_stored_finding_has_every_finding_field() -> None:
    assert set(Finding.model_fields) <= set(StoredFinding.model_fields)


def test_new_finding_is_stored_with_its_facts(finding_store: TableFindingStore, make_finding) -> None:
    finding = make_finding(evidence={"when": datetime(2024, 5, 1, tzinfo=UTC), "ips": ["1.2.3.4"], "n": {"a": 1}},
                           context={"owners": ["alice"]})
    result = finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    assert (result.new, result.recurring, result.unchanged) == ([finding.id], [], [])
    stored = finding_store.get_finding(finding.id)
    assert stored is not None
    assert stored.id == finding.id and stored.status == "new" and stored.occurrences == 1
    assert stored.first_detected == stored.last_detected == NOW
    assert stored.evidence == {"when": "2024-05-01T00:00:00+00:00", "ips": ["1.2.3.4"], "n": {"a": 1}}
    assert stored.context == {"owners": ["alice"]} and stored.entities == finding.entities
    assert stored.window_start == finding.window_start and stored.first_seen == finding.first_seen
    assert not stored.evidence_trimmed
    assert finding_store.get_finding("0" * 32) is None and finding_store.get_finding("") is None


def test_rerunning_the_same_window_changes_nothing(finding_store: TableFindingStore, make_finding) -> None:
    findings = [make_finding(principal=f"sp{i}") for i in range(5)]
    finding_store.upsert_findings(findings, run_id="run1", now=NOW)
    before = {f.id: finding_store.get_finding(f.id) for f in findings}
    again = finding_store.upsert_findings(findings, run_id="run2", now=NOW + timedelta(hours=1))
    assert again.new == [] and again.recurring == [] and sorted(again.unchanged) == sorted(before)
    assert again.transactions == 0
    assert {f.id: finding_store.get_finding(f.id) for f in findings} == before
    page, _ = finding_store.query_findings()
    assert len(page) == 5  # no duplicates in the index either


def test_duplicates_within_one_call_count_once(finding_store: TableFindingStore, make_finding) -> None:
    finding = make_finding()
    result = finding_store.upsert_findings([finding, finding, finding], run_id="run1", now=NOW)
    assert result.new == [finding.id]
    assert finding_store.get_finding(finding.id).occurrences == 1


def test_recurrence_updates_facts_and_count_but_keeps_triage(finding_store: TableFindingStore,
                                                            make_finding) -> None:
    first = make_finding(day=0)
    finding_store.upsert_findings([first], run_id="run1", now=NOW)
    finding_store.triage(first.id, Triage(status="acknowledged", comment="owner asked", by="alice"),
                         NOW + timedelta(hours=1))
    second = make_finding(day=1, evidence={"count": 9}, last_seen=first.last_seen + timedelta(days=1))
    assert second.id == first.id and second.occurrence_id != first.occurrence_id
    later = NOW + timedelta(days=1)
    result = finding_store.upsert_findings([second], run_id="run2", now=later)
    assert result.recurring == [first.id]
    stored = finding_store.get_finding(first.id)
    assert stored.status == "acknowledged" and stored.comment == "owner asked" and stored.triaged_by == "alice"
    assert stored.occurrences == 2 and stored.evidence == {"count": 9}
    assert stored.first_detected == NOW and stored.last_detected == later
    assert stored.first_seen == first.first_seen and stored.last_seen == second.last_seen
    assert stored.window_start == second.window_start
    # the index moved with last_detected: found by the new time, not the old one
    assert [f.id for f in finding_store.query_findings(since=later)[0]] == [first.id]
    assert finding_store.query_findings(until=later)[0] == []
    assert [f.id for f in finding_store.query_findings(status="acknowledged")[0]] == [first.id]
    # and re-running either window again is a no-op
    again = finding_store.upsert_findings([first, second], run_id="run3", now=later + timedelta(hours=1))
    assert again.unchanged == [first.id]
    assert finding_store.get_finding(first.id).occurrences == 2


def test_catch_up_of_an_older_window_counts_but_keeps_newer_evidence(finding_store: TableFindingStore,
                                                                   make_finding) -> None:
    newer = make_finding(day=3, evidence={"v": "new"})
    finding_store.upsert_findings([newer], run_id="run1", now=NOW)
    older = make_finding(day=1, evidence={"v": "old"})
    assert finding_store.upsert_findings([older], run_id="run2", now=NOW + timedelta(hours=1)).recurring
    stored = finding_store.get_finding(newer.id)
    assert stored.evidence == {"v": "new"} and stored.window_end == newer.window_end and stored.occurrences == 2
    assert stored.first_seen == older.first_seen


def test_two_windows_in_one_call(finding_store: TableFindingStore, make_finding) -> None:
    windows = [make_finding(day=day) for day in range(4)]
    result = finding_store.upsert_findings(windows, run_id="run1", now=NOW)
    assert result.new == [windows[0].id]
    stored = finding_store.get_finding(windows[0].id)
    assert stored.occurrences == 4 and stored.window_end == windows[-1].window_end


def test_250_findings_in_one_partition_take_three_transactions(finding_store: TableFindingStore,
                                                               make_finding) -> None:
    findings = [make_finding(principal=f"sp{i:03}", detection="bulk") for i in range(250)]
    result = finding_store.upsert_findings(findings, run_id="run1", now=NOW)
    assert len(result.new) == 250
    log = finding_store.transactions
    index = finding_store.index.table_name
    assert log.sizes(index, "d~bulk") == [100, 100, 50]
    assert log.sizes(index, "s~new") == [100, 100, 50]
    assert log.sizes(index, "v~Medium") == [100, 100, 50]
    assert log.sizes(finding_store.outbox.table_name, "o~teams") == [100, 100, 50]
    assert all(0 < entry.operations <= 100 for entry in log.entries)
    # finding row + its occurrence row go together: even sized chunks per shard
    for entry in log.entries:
        if entry.table == finding_store.findings.table_name:
            assert entry.operations % 2 == 0
    assert result.transactions == len(log)
    assert len(finding_store.query_findings(detection="bulk", limit=1000)[0]) == 250


def test_findings_sharing_a_shard_share_transactions(finding_store: TableFindingStore, make_finding) -> None:
    findings = [make_finding(principal=f"sp{i}") for i in range(400)]
    finding_store.upsert_findings(findings, run_id="run1", now=NOW)
    table = finding_store.findings.table_name
    per_shard = {shard(f.id) for f in findings}
    sizes = [entry for entry in finding_store.transactions.entries if entry.table == table]
    assert len(sizes) < len(findings) / 10  # batched, not one call per finding
    assert {entry.partition for entry in sizes} == per_shard


def test_triage(finding_store: TableFindingStore, make_finding) -> None:
    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    at = NOW + timedelta(hours=2)
    triaged = finding_store.triage(finding.id, Triage(status="false_positive", comment="test tenant", by="bob"), at)
    assert triaged.status == "false_positive" and triaged.triaged_at == at and triaged.triaged_by == "bob"
    assert finding_store.get_finding(finding.id) == triaged
    assert finding_store.query_findings(status="new")[0] == []
    assert [f.id for f in finding_store.query_findings(status="false_positive")[0]] == [finding.id]
    assert [f.status for f in finding_store.query_findings(principal="sp1")[0]] == ["false_positive"]
    with pytest.raises(ValueError, match="status"):
        Triage(status="closed", by="bob")
    with pytest.raises(ValueError, match="comment"):
        Triage(status="resolved", comment="x" * 5000, by="bob")
    with pytest.raises(ValueError, match="a status, a comment or both"):
        Triage(by="bob")
    with pytest.raises(KeyError):
        finding_store.triage("f" * 32, Triage(status="resolved", by="bob"), at)
    reopened = finding_store.triage(finding.id, Triage(status="new", by="bob"), at)
    assert reopened.status == "new"
    assert len(finding_store.query_findings()[0]) == 1


def test_a_triage_between_read_and_write_is_not_overwritten(finding_store: TableFindingStore, make_finding) -> None:
    first, second = make_finding(day=0), make_finding(day=1)
    finding_store.upsert_findings([first], run_id="run1", now=NOW)
    later = NOW + timedelta(days=1)
    state = finding_store._read_states([first.id])[first.id]
    stale_plan = finding_store._plan(first.id, [second], state, "run2", later)
    finding_store.triage(first.id, Triage(status="acknowledged", comment="on it", by="dave"), NOW + timedelta(hours=1))
    conflicted, _ = finding_store._write([stale_plan])  # the ETag no longer matches
    assert conflicted == {first.id}
    assert finding_store.get_finding(first.id).status == "acknowledged"
    result = finding_store.upsert_findings([second], run_id="run2", now=later)  # re-reads, then writes
    stored = finding_store.get_finding(first.id)
    assert result.recurring == [first.id] and stored.status == "acknowledged" and stored.occurrences == 2
    assert [f.id for f in finding_store.query_findings(status="acknowledged")[0]] == [first.id]
    assert len(finding_store.query_findings()[0]) == 1  # the stale plan's index rows are skipped


# --- triage history and recurrence --------------------------------------------------------------------------------


def test_a_status_change_keeps_the_comment_and_every_change_is_in_the_history(finding_store: TableFindingStore,
                                                                               make_finding) -> None:
    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    first, second, third = (NOW + timedelta(hours=n) for n in (1, 2, 3))
    finding_store.triage(finding.id, Triage(status="acknowledged", comment="asked the owner", by="alice"), first)
    finding_store.triage(finding.id, Triage(comment="owner says it is the nightly job", by="bob"), second)
    resolved = finding_store.triage(finding.id, Triage(status="resolved", by="carol"), third)
    assert resolved.comment == "owner says it is the nightly job"  # a status change alone keeps the comment
    assert (resolved.status, resolved.triaged_by, resolved.triaged_at) == ("resolved", "carol", third)
    stored = finding_store.get_finding(finding.id)
    assert stored == resolved
    assert [entry.model_dump(by_alias=True) for entry in stored.history] == [
        {"at": first, "by": "alice", "field": "status", "from": "new", "to": "acknowledged",
         "comment": "asked the owner"},
        {"at": second, "by": "bob", "field": "comment", "from": None, "to": None,
         "comment": "owner says it is the nightly job"},
        {"at": third, "by": "carol", "field": "status", "from": "acknowledged", "to": "resolved", "comment": ""},
    ]
    unchanged = finding_store.triage(finding.id, Triage(status="resolved", by="dave"), third + timedelta(hours=1))
    assert unchanged == stored and len(finding_store.get_finding(finding.id).history) == 3


def test_a_triage_at_a_stale_version_is_refused_and_changes_nothing(finding_store: TableFindingStore,
                                                                     make_finding) -> None:
    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    read_by_alice = finding_store.get_finding(finding.id)
    read_by_bob = finding_store.get_finding(finding.id)
    assert read_by_alice.version and read_by_alice.version == read_by_bob.version
    alice = finding_store.triage(finding.id, Triage(status="resolved", comment="rotated", by="alice"), NOW,
                                 expected_versions=frozenset({read_by_alice.version}))
    assert alice.version != read_by_alice.version and alice.version == finding_store.get_finding(finding.id).version
    with pytest.raises(FindingChanged) as refused:
        finding_store.triage(finding.id, Triage(status="false_positive", by="bob"), NOW,
                             expected_versions=frozenset({read_by_bob.version}))
    assert refused.value.current.status == "resolved"
    stored = finding_store.get_finding(finding.id)
    assert (stored.status, stored.comment, len(stored.history)) == ("resolved", "rotated", 1)


def test_without_a_version_concurrent_triages_both_land_in_the_history(finding_store: TableFindingStore,
                                                                        make_finding) -> None:
    from concurrent.futures import ThreadPoolExecutor

    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    changes = [Triage(comment=f"note {n}", by=f"analyst{n}") for n in range(6)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(lambda change: finding_store.triage(finding.id, change, NOW), changes))
    stored = finding_store.get_finding(finding.id)
    assert sorted(entry.by for entry in stored.history) == [f"analyst{n}" for n in range(6)]


def test_a_resolved_finding_that_fires_again_is_new_and_queued_for_the_digest(finding_store: TableFindingStore,
                                                                               make_finding) -> None:
    first = make_finding(day=0)
    finding_store.upsert_findings([first], run_id="run1", now=NOW)
    finding_store.mark_notified("teams", [first.id])
    assert finding_store.pending_notifications("teams") == []
    finding_store.triage(first.id, Triage(status="resolved", comment="secret rotated", by="alice"),
                         NOW + timedelta(hours=1))
    later = NOW + timedelta(days=1)
    result = finding_store.upsert_findings([make_finding(day=1)], run_id="run2", now=later)
    assert (result.new, result.reopened, result.recurring) == ([first.id], [first.id], [])
    stored = finding_store.get_finding(first.id)
    assert (stored.status, stored.comment, stored.occurrences) == ("new", "secret rotated", 2)
    assert [(entry.by, entry.from_, entry.to) for entry in stored.history] == [
        ("alice", "new", "resolved"), ("wiaudit", "resolved", "new")]
    assert stored.history[-1].comment == "fired again in the window 2024-05-02 06:00 UTC to 2024-05-03 06:00 UTC"
    assert stored.history[-1].at == later
    assert [f.id for f in finding_store.query_findings(status="new")[0]] == [first.id]
    assert finding_store.query_findings(status="resolved")[0] == []
    assert [f.id for f in finding_store.pending_notifications("teams")] == [first.id]
    # an acknowledged finding that fires again stays acknowledged and is not announced again
    finding_store.mark_notified("teams", [first.id])
    finding_store.triage(first.id, Triage(status="acknowledged", by="alice"), later)
    result = finding_store.upsert_findings([make_finding(day=2)], run_id="run3", now=later + timedelta(days=1))
    assert (result.new, result.recurring) == ([], [first.id])
    assert finding_store.get_finding(first.id).status == "acknowledged"
    assert finding_store.pending_notifications("teams") == []


def test_a_false_positive_reopens_too_but_a_rerun_of_an_old_window_does_not(finding_store: TableFindingStore,
                                                                            make_finding) -> None:
    first = make_finding(day=0)
    finding_store.upsert_findings([first], run_id="run1", now=NOW)
    finding_store.triage(first.id, Triage(status="false_positive", by="bob"), NOW)
    again = finding_store.upsert_findings([first], run_id="run2", now=NOW + timedelta(hours=1))
    assert again.unchanged == [first.id] and finding_store.get_finding(first.id).status == "false_positive"
    result = finding_store.upsert_findings([make_finding(day=1)], run_id="run3", now=NOW + timedelta(days=1))
    assert result.reopened == [first.id] and finding_store.get_finding(first.id).status == "new"


def test_a_long_history_is_kept_across_properties(finding_store: TableFindingStore, make_finding) -> None:
    finding = make_finding()
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    for n in range(40):  # 40 x 4000 characters: more than one table property holds
        finding_store.triage(finding.id, Triage(comment=f"{n:02d}" + "x" * 3998, by="alice"),
                             NOW + timedelta(minutes=n))
    stored = finding_store.get_finding(finding.id)
    assert [entry.comment[:2] for entry in stored.history] == [f"{n:02d}" for n in range(40)]
