"""Runs, checkpoints and the audit lease on real Azurite."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import InvalidContinuation, RunRecord, TableFindingStore

T = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)


def test_run_lifecycle(finding_store: TableFindingStore) -> None:
    run = RunRecord(id="run-2024-05-01", started=T, trigger="timer",
                    windows={"det_a": [(T - timedelta(days=1), T)]})
    finding_store.start_run(run)
    assert finding_store.get_run(run.id) == run
    done = run.model_copy(update={"ended": T + timedelta(minutes=3), "status": "partial",
                                  "counts": {"det_a": {"findings": 4, "new": 1}}, "errors": {"det_b": "timeout"}})
    finding_store.finish_run(done)
    assert finding_store.get_run(run.id) == done
    assert finding_store.list_runs()[0] == [done]  # updated in place, not listed twice
    assert finding_store.get_run("nope") is None


def test_huge_run_record_still_saves(finding_store: TableFindingStore) -> None:
    windows = {f"det{d}": [(T + timedelta(hours=h), T + timedelta(hours=h + 1)) for h in range(2000)]
               for d in range(20)}
    run = RunRecord(id="big", started=T, windows=windows, errors={f"det{d}": "e" * 50_000 for d in range(20)})
    finding_store.start_run(run)
    stored = finding_store.get_run("big")
    assert stored.windows["det0"][0] == windows["det0"][0] and stored.windows["det0"][-1] == windows["det0"][-1]
    assert stored.errors["det3"].startswith("eee")


def test_runs_are_listed_newest_first_with_paging(finding_store: TableFindingStore) -> None:
    runs = [RunRecord(id=f"run/{i}?#", started=T + timedelta(hours=i)) for i in range(7)]
    for run in runs:
        finding_store.start_run(run)
    seen, token = [], None
    while True:
        page, token = finding_store.list_runs(limit=3, continuation=token)
        seen += [run.id for run in page]
        if token is None:
            break
    assert seen == [run.id for run in reversed(runs)]
    with pytest.raises(InvalidContinuation):
        finding_store.list_runs(limit=3, continuation="forged.token")
    _, findings_token = finding_store.query_findings(limit=1)
    assert findings_token is None


def test_checkpoints(finding_store: TableFindingStore) -> None:
    assert finding_store.get_checkpoint("det_a") is None
    finding_store.set_checkpoint("det_a", T)
    finding_store.set_checkpoint("odd/id#?", T + timedelta(hours=1))
    assert finding_store.get_checkpoint("det_a") == T
    assert finding_store.get_checkpoint("odd/id#?") == T + timedelta(hours=1)
    finding_store.set_checkpoint("det_a", T + timedelta(days=1))
    assert finding_store.get_checkpoint("det_a") == T + timedelta(days=1)
    assert finding_store.get_checkpoint("det_b") is None


def test_lease_basics(finding_store: TableFindingStore) -> None:
    hour = timedelta(hours=1)
    assert finding_store.acquire_lease("audit", "a", hour, T)
    assert not finding_store.acquire_lease("audit", "b", hour, T + timedelta(minutes=30))
    assert finding_store.acquire_lease("audit", "a", hour, T + timedelta(minutes=30))  # renew own
    assert not finding_store.release_lease("audit", "b")
    assert finding_store.release_lease("audit", "a")
    assert finding_store.acquire_lease("audit", "b", hour, T + timedelta(minutes=31))
    # b crashes; after expiry a takes over
    assert not finding_store.acquire_lease("audit", "a", hour, T + timedelta(minutes=90))
    assert finding_store.acquire_lease("audit", "a", hour, T + timedelta(minutes=92))
    assert finding_store.acquire_lease("other", "b", hour, T)  # leases are independent


@pytest.mark.parametrize("expired", [False, True])
def test_racing_acquirers_exactly_one_wins(finding_store: TableFindingStore, table_service, expired: bool) -> None:
    if expired:
        assert finding_store.acquire_lease("audit", "crashed", timedelta(minutes=5), T)
    now = T + timedelta(hours=1)
    stores = [TableFindingStore(table_service, prefix=finding_store.prefix) for _ in range(8)]
    barrier = threading.Barrier(len(stores))
    results: dict[int, bool] = {}

    def race(number: int) -> None:
        barrier.wait()
        results[number] = stores[number].acquire_lease("audit", f"worker{number}", timedelta(minutes=10), now)

    threads = [threading.Thread(target=race, args=(number,)) for number in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [number for number, won in results.items() if won]
    assert len(results) == len(stores) and len(winners) == 1
    entity = finding_store.meta.get_entity("lease", "l~audit")
    assert entity["owner"] == f"worker{winners[0]}"
