"""The stored credential inventory: whole replacement by snapshot, filters, paging, tokens.

Also the CredentialRecord builders the other test_credentials_* modules import.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.posture.model import CredentialRecord, Owner
from shared.store import InvalidContinuation
from shared.store.credentials import REGISTRY, InventoryConflict

NOW = datetime(2026, 3, 8, 6, 0, tzinfo=UTC)


def make_record(number: int = 1, *, end_days: float | None = 100, used_days_ago: float | None = 1,
                **overrides: Any) -> CredentialRecord:
    """A secret on app `app-<number>`; end and last use relative to NOW (None: no end / never seen)."""
    end = NOW + timedelta(days=end_days) if end_days is not None else None
    status = "no end date" if end is None else "expired" if end <= NOW else "expiring" if end_days < 30 else "active"
    fields: dict[str, Any] = {
        "principal_id": f"00000000-0000-0000-0000-{number:012d}", "principal_name": f"app-{number}",
        "principal_type": "application", "app_id": f"10000000-0000-0000-0000-{number:012d}",
        "application_id": f"20000000-0000-0000-0000-{number:012d}", "held_on": "application",
        "key_id": f"30000000-0000-0000-0000-{number:012d}", "display_name": f"secret {number}", "type": "secret",
        "start": NOW - timedelta(days=200), "end": end, "status": status,
        "days_to_expiry": None if end is None else int(end_days), "lifetime_days": None if end is None else
        int(end_days + 200),
        "last_used": NOW - timedelta(days=used_days_ago) if used_days_ago is not None else None,
        "usage_known": True, "owners": [Owner(id=f"u{number}", name=f"Owner {number}")],
    }
    fields.update(overrides)
    return CredentialRecord(**fields)


def ids(records: list[CredentialRecord]) -> list[str]:
    return [record.principal_name for record in records]


def test_an_empty_store_has_no_inventory(finding_store):
    assert finding_store.inventory_snapshot() is None
    assert finding_store.query_credentials() == ([], None)
    assert finding_store.all_credentials() == []


def test_replace_round_trips_records_soonest_expiry_first(finding_store):
    records = [make_record(1, end_days=200), make_record(2, end_days=-3), make_record(3, end_days=None),
               make_record(4, end_days=10, privileged=True, privileged_reasons=["Application.ReadWrite.All"])]
    finding_store.replace_inventory(records, NOW)
    stored, token = finding_store.query_credentials()
    assert token is None
    assert ids(stored) == ["app-2", "app-4", "app-1", "app-3"]
    assert stored[1] == records[3]
    _, taken_at, count = finding_store.inventory_snapshot()
    assert taken_at == NOW and count == 4


def test_replace_removes_credentials_that_disappeared_and_older_snapshots(finding_store):
    finding_store.replace_inventory([make_record(n) for n in range(1, 6)], NOW)
    finding_store.replace_inventory([make_record(2), make_record(9)], NOW + timedelta(days=1))
    assert sorted(ids(finding_store.all_credentials())) == ["app-2", "app-9"]
    partitions = {row["PartitionKey"] for row in finding_store.credentials.list_entities(select=["PartitionKey"])}
    assert partitions == {"current", REGISTRY, f"s~{finding_store.inventory_snapshot()[0]}"}


def test_big_inventory_is_written_in_transactions_of_at_most_100(finding_store):
    records = [make_record(n, end_days=n % 400) for n in range(1, 251)]
    finding_store.replace_inventory(records, NOW)
    snapshot = finding_store.inventory_snapshot()[0]
    sizes = finding_store.transactions.sizes(finding_store.credentials.table_name, f"s~{snapshot}")
    assert sizes == [100, 100, 50]
    assert len(finding_store.all_credentials()) == 250


def test_a_repeated_credential_is_stored_once(finding_store):
    finding_store.replace_inventory([make_record(1, display_name="old"), make_record(1, display_name="new")], NOW)
    assert [record.display_name for record in finding_store.all_credentials()] == ["new"]


def test_an_interrupted_replace_leaves_the_old_inventory_readable_and_is_cleaned_up_next_time(finding_store,
                                                                                                monkeypatch):
    finding_store.replace_inventory([make_record(1), make_record(2)], NOW)
    monkeypatch.setattr(type(finding_store), "_flip", lambda *args: (_ for _ in ()).throw(RuntimeError("crash")))
    with pytest.raises(RuntimeError, match="crash"):
        finding_store.replace_inventory([make_record(n) for n in range(3, 8)], NOW + timedelta(days=1))
    assert ids(finding_store.all_credentials()) == ["app-1", "app-2"]  # the half-written snapshot is invisible
    monkeypatch.undo()
    finding_store.replace_inventory([make_record(8)], NOW + timedelta(days=2))
    assert ids(finding_store.all_credentials()) == ["app-8"]
    registered = [row["RowKey"] for row in finding_store.credentials.query_entities(f"PartitionKey eq '{REGISTRY}'")]
    assert registered == [finding_store.inventory_snapshot()[0]]
    assert sum(1 for _ in finding_store.credentials.list_entities()) == 1 + 1 + 1  # pointer, registry, one row


def test_an_older_inventory_never_replaces_a_newer_one(finding_store):
    finding_store.replace_inventory([make_record(1)], NOW)
    with pytest.raises(InventoryConflict):
        finding_store.replace_inventory([make_record(2)], NOW - timedelta(days=1))
    assert ids(finding_store.all_credentials()) == ["app-1"]
    assert sum(1 for _ in finding_store.credentials.list_entities()) == 3


def test_filters_are_relative_to_the_snapshot(finding_store):
    records = [
        make_record(1, end_days=5, used_days_ago=1),                     # expiring, in use
        make_record(2, end_days=-2, used_days_ago=40),                   # expired
        make_record(3, end_days=29, used_days_ago=None),                 # expiring, never used (known)
        make_record(4, end_days=31, used_days_ago=60, privileged=True),  # unused 60d, privileged
        make_record(5, end_days=None, used_days_ago=None, usage_known=False),  # usage unknown: not "unused"
        make_record(6, end_days=None, used_days_ago=45, usage_known=False, privileged=True),  # known: last use 45d
    ]
    finding_store.replace_inventory(records, NOW)

    def names(**filters: Any) -> list[str]:
        return ids(finding_store.query_credentials(**filters)[0])

    assert names(expiring_within=timedelta(days=30)) == ["app-1", "app-3"]
    assert names(expiring_within=timedelta(days=31, hours=1)) == ["app-1", "app-3", "app-4"]
    assert names(unused_for=timedelta(days=30)) == ["app-2", "app-3", "app-4", "app-6"]
    assert names(unused_for=timedelta(days=50)) == ["app-3", "app-4"]
    assert names(privileged=True) == ["app-4", "app-6"]
    assert names(privileged=False) == ["app-2", "app-1", "app-3", "app-5"]
    assert names(unused_for=timedelta(days=30), privileged=True) == ["app-4", "app-6"]
    assert names(expiring_within=timedelta(days=3650), unused_for=timedelta(days=1), privileged=True) == ["app-4"]
    assert names(expiring_within=timedelta(days=10**6)) == ["app-1", "app-3", "app-4"]  # far future: no overflow


def test_pages_cover_everything_once_and_tokens_are_bound_to_the_query(finding_store):
    finding_store.replace_inventory([make_record(n, end_days=n % 13, privileged=n % 2 == 0)
                                     for n in range(1, 48)], NOW)
    seen, token, pages = [], None, 0
    while True:
        page, token = finding_store.query_credentials(privileged=True, limit=5, continuation=token)
        seen += ids(page)
        pages += 1
        if token is None:
            break
        with pytest.raises(InvalidContinuation, match="different query"):
            finding_store.query_credentials(privileged=False, limit=5, continuation=token)
    assert sorted(seen) == sorted(f"app-{n}" for n in range(2, 48, 2)) and len(seen) == len(set(seen)) == 23
    assert pages == 5
    with pytest.raises(InvalidContinuation):
        finding_store.query_credentials(continuation="not.a-token")


def test_a_token_outliving_its_inventory_is_refused(finding_store):
    finding_store.replace_inventory([make_record(n) for n in range(1, 5)], NOW)
    _, token = finding_store.query_credentials(limit=2)
    finding_store.replace_inventory([make_record(n) for n in range(1, 5)], NOW + timedelta(days=1))
    with pytest.raises(InvalidContinuation, match="replaced"):
        finding_store.query_credentials(limit=2, continuation=token)


def test_bad_arguments_are_value_errors(finding_store):
    with pytest.raises(ValueError, match="limit"):
        finding_store.query_credentials(limit=0)
    with pytest.raises(ValueError, match="negative"):
        finding_store.query_credentials(unused_for=timedelta(days=-1))


def test_unsafe_ids_and_huge_owner_lists_are_stored(finding_store):
    odd = make_record(1, principal_id="a/b#c?d", key_id="k\\1", principal_name="name with 'quotes' and 🔑",
                      owners=[Owner(id=str(n), name="o" * 200) for n in range(400)])
    finding_store.replace_inventory([odd], NOW)
    (stored,) = finding_store.all_credentials()
    assert stored.principal_id == "a/b#c?d" and stored.principal_name == odd.principal_name
    assert 0 < len(stored.owners) < 400


def test_a_managed_identitys_own_certificate_is_never_unused(finding_store):
    managed = make_record(1, used_days_ago=None, principal_type="managed identity", type="certificate",
                          held_on="servicePrincipal")
    finding_store.replace_inventory([managed, make_record(2, used_days_ago=None)], NOW)
    assert ids(finding_store.query_credentials(unused_for=timedelta(days=1))[0]) == ["app-2"]
    assert sorted(ids(finding_store.all_credentials())) == ["app-1", "app-2"]


# --- the audit pipeline keeps the inventory and puts its hygiene in the digest ------------------------------------


def test_the_audit_stores_the_inventory_and_the_digest_carries_its_hygiene(finding_store, make_finding):
    from directory_fixtures import make_snapshot

    from shared.audit.pipeline import AuditPipeline

    class NoLogs:
        def query(self, kql, start, end):
            return []

    class Snapshot:
        def inventory(self):
            return make_snapshot(30, seed=3)

    class Teams:
        channel = "teams"

        def __init__(self):
            self.digests = []

        def send(self, digest):
            self.digests.append(digest)

    finding_store.upsert_findings([make_finding("sp1")], "earlier-run", NOW - timedelta(days=1))  # a pending finding
    teams = Teams()
    outcome = AuditPipeline([], NoLogs(), Snapshot(), finding_store, [teams], clock=lambda: NOW, checks=[]).run()
    assert outcome.inventory and "credentials" not in outcome.run.errors
    stored = finding_store.all_credentials()
    assert len(stored) == len(outcome.inventory)
    assert finding_store.inventory_snapshot()[1] == outcome.inventory_taken_at
    (digest,) = teams.digests
    assert digest.hygiene is not None and digest.hygiene.taken_at == outcome.inventory_taken_at
    assert digest.hygiene.credentials == len(outcome.inventory)  # the whole inventory, as wiaudit credentials shows
    assert digest.hygiene.managed_by_azure == sum(r.principal_type == "managed identity" and r.type != "federated"
                                                  for r in outcome.inventory)
