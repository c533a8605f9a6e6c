"""Runs always close: the lease is taken, renewed while the run works and always given back; a run that was
killed is found `abandoned` by the next one; an error while closing never hides the error that ended the run.

Real parts: Azurite for the store, the sample tenant's logs in the embedded engine, a real child process that is
really killed. The lease runs on the wall clock; where a test needs time to pass it gives the pipeline a lease
clock it moves itself, so nothing here depends on how fast the machine is."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError
from typer.testing import CliRunner

from shared.audit.lease import LEASE, AuditAlreadyRunning, LeaseLost
from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.audit.sample import sample_pipeline
from shared.catalog.model import Detection
from shared.catalog.rule_files import parse_rule_file
from shared.cli import app
from shared.cli.common import EXIT_ALREADY_RUNNING
from shared.directory.port import SnapshotFileDirectory
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.model import RunRecord
from shared.store.tables import TableFindingStore

REPO = Path(__file__).resolve().parent.parent
DETECTION_FILE = REPO / "shared" / "detections" / "sp_signin_failures.yaml"
HOUR = timedelta(hours=1)


@pytest.fixture(scope="module")
def detection() -> Detection:
    problems: list[str] = []
    loaded = parse_rule_file(DETECTION_FILE, Detection, problems)
    assert loaded is not None, problems
    return loaded


class ManualClock:
    """A lease clock the test moves; it starts at the wall clock's now."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def _pipeline(store, detection, source, tenant, *, lease_clock=None, days: int = 2) -> AuditPipeline:
    options = {"lease_clock": lease_clock} if lease_clock else {}
    return AuditPipeline([detection], source, SnapshotFileDirectory(tenant / "directory.json"), store, [],
                         clock=lambda: SAMPLE_NOW, config=AuditConfig(max_lookback=timedelta(days=days)), checks=[],
                         **options)


def _statuses(store: TableFindingStore) -> dict[str, str]:
    runs, _ = store.list_runs(limit=100)
    return {run.id: run.status for run in runs}


def test_the_lease_is_on_the_wall_clock_even_when_the_audit_clock_is_fixed(finding_store, detection, sample_source,
                                                                           sample_tenant):
    """A run on the sample tenant's fixed clock (2026-03-15) holds the lease from now, not from that date."""
    holder = {}

    class Watching:
        def query(self, kql, start, end, **options):
            holder["lease"] = finding_store.lease_holder(LEASE)
            return sample_source.query(kql, start, end, **options)

    before = datetime.now(UTC)
    outcome = _pipeline(finding_store, detection, Watching(), sample_tenant).run()
    owner, expires = holder["lease"]
    assert owner == outcome.run.id and outcome.run.started == SAMPLE_NOW
    assert expires >= before + AuditConfig().lease_duration
    assert finding_store.lease_holder(LEASE) is None


def test_a_held_lease_refuses_the_run_and_an_expired_one_is_taken_over(finding_store, detection, sample_source,
                                                                       sample_tenant):
    now = datetime.now(UTC)
    assert finding_store.acquire_lease(LEASE, "crashed-run", HOUR, now)
    with pytest.raises(AuditAlreadyRunning, match=r"holds the lease until \d{4}-\d\d-\d\d \d\d:\d\d UTC"):
        _pipeline(finding_store, detection, sample_source, sample_tenant).run()
    assert _statuses(finding_store) == {}  # refused: no run record at all
    later = _pipeline(finding_store, detection, sample_source, sample_tenant, lease_clock=lambda: now + 2 * HOUR).run()
    assert later.run.status == "succeeded"
    assert finding_store.lease_holder(LEASE) is None


def test_a_run_left_running_is_marked_abandoned_with_what_it_knew(finding_store, detection, sample_source,
                                                                  sample_tenant):
    now = datetime.now(UTC)
    killed = RunRecord(id="killed-run", started=SAMPLE_NOW - HOUR, counts={"det_a": {"findings": 2, "new": 1}},
                       windows={"det_a": [(SAMPLE_NOW - 2 * HOUR, SAMPLE_NOW - HOUR)]})
    finding_store.start_run(killed)
    assert finding_store.acquire_lease(LEASE, killed.id, HOUR, now - 2 * HOUR)  # expired an hour ago
    outcome = _pipeline(finding_store, detection, sample_source, sample_tenant).run()
    found = finding_store.get_run(killed.id)
    assert found.status == "abandoned" and outcome.run.id in found.errors["abandoned"]
    assert (found.counts, found.windows) == (killed.counts, killed.windows)
    assert _statuses(finding_store) == {killed.id: "abandoned", outcome.run.id: "succeeded"}


def _failing_store(finding_store, *methods: str) -> TableFindingStore:
    """The real store, except that the named methods answer like a Table service refusing the request."""

    def refusing(name: str):
        def refuse(self, *args, **kwargs):
            raise HttpResponseError(message=f"{name}: the table service answered 503 ServerBusy")
        return refuse

    failing_type = type("FailingStore", (TableFindingStore,), {name: refusing(name) for name in methods})
    return failing_type(finding_store.service, prefix=finding_store.prefix)


def test_a_store_error_in_start_run_fails_the_run_and_releases_the_lease(finding_store, detection, sample_source,
                                                                         sample_tenant):
    store = _failing_store(finding_store, "start_run")
    with pytest.raises(HttpResponseError, match="start_run"):
        _pipeline(store, detection, sample_source, sample_tenant).run()
    assert finding_store.lease_holder(LEASE) is None
    [(run_id, status)] = _statuses(finding_store).items()
    assert status == "failed" and "start_run" in finding_store.get_run(run_id).errors["run"]


def test_a_failing_finish_run_neither_hides_the_original_error_nor_keeps_the_lease(finding_store, detection,
                                                                                   sample_source, sample_tenant):
    store = _failing_store(finding_store, "set_checkpoint", "finish_run")
    with pytest.raises(HttpResponseError, match="set_checkpoint") as raised:
        _pipeline(store, detection, sample_source, sample_tenant).run()
    assert any("finish_run" in note for note in raised.value.__notes__)
    assert finding_store.lease_holder(LEASE) is None


def test_a_failing_finish_run_after_a_good_run_is_the_error_and_the_lease_is_released(finding_store, detection,
                                                                                      sample_source, sample_tenant):
    with pytest.raises(HttpResponseError, match="finish_run"):
        _pipeline(_failing_store(finding_store, "finish_run"), detection, sample_source, sample_tenant).run()
    assert finding_store.lease_holder(LEASE) is None


def test_when_saving_the_end_and_releasing_both_fail_the_first_error_carries_the_second(
        finding_store, detection, sample_source, sample_tenant):
    store = _failing_store(finding_store, "finish_run", "release_lease")
    with pytest.raises(HttpResponseError, match="finish_run") as raised:
        _pipeline(store, detection, sample_source, sample_tenant).run()
    assert any("release_lease" in note for note in raised.value.__notes__)


def test_a_slow_run_renews_its_lease_so_nobody_takes_it_over(finding_store, detection, sample_source, sample_tenant):
    """Each query takes 25 minutes of lease time; four windows take longer than the one-hour lease."""
    clock = ManualClock()
    intruder_won: list[bool] = []
    progress: list[dict] = []

    class Slow:
        def query(self, kql, start, end, **options):
            clock.now += timedelta(minutes=25)
            intruder_won.append(finding_store.acquire_lease(LEASE, "intruder", HOUR, clock.now))
            progress.append(dict(finding_store.get_run(finding_store.lease_holder(LEASE)[0]).windows))
            return sample_source.query(kql, start, end, **options)

    outcome = _pipeline(finding_store, detection, Slow(), sample_tenant, lease_clock=clock, days=4).run()
    assert len(outcome.run.windows[detection.id]) == 4 and len(intruder_won) >= 4
    assert not any(intruder_won)
    assert outcome.run.status == "succeeded" and finding_store.lease_holder(LEASE) is None
    assert progress[-1] == {detection.id: outcome.run.windows[detection.id]}  # saved while it ran


def test_a_run_that_stalled_past_its_lease_stops_when_it_finds_the_lease_taken(finding_store, detection,
                                                                               sample_source, sample_tenant):
    clock = ManualClock()

    class Stalling:
        def query(self, kql, start, end, **options):
            clock.now += 2 * HOUR
            finding_store.acquire_lease(LEASE, "next-run", HOUR, clock.now)
            return sample_source.query(kql, start, end, **options)

    with pytest.raises(LeaseLost):
        _pipeline(finding_store, detection, Stalling(), sample_tenant, lease_clock=clock).run()
    assert finding_store.lease_holder(LEASE)[0] == "next-run"  # never released on the new holder's behalf
    assert set(_statuses(finding_store).values()) == {"failed"}


_CHILD = """
import sys, threading
from azure.data.tables import TableServiceClient
from shared.audit.pipeline import AuditPipeline
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.tables import TableFindingStore

class BlockingDirectory:
    def inventory(self):
        print("blocked", flush=True)
        threading.Event().wait()

connection_string, prefix = sys.argv[1:]
store = TableFindingStore(TableServiceClient.from_connection_string(connection_string), prefix=prefix)
AuditPipeline([], None, BlockingDirectory(), store, [], clock=lambda: SAMPLE_NOW, checks=[]).run(trigger="doomed")
"""


def test_a_killed_run_is_abandoned_by_the_next_and_leaves_no_lease(azurite, finding_store, detection, sample_source,
                                                                   sample_tenant):
    child = subprocess.Popen([sys.executable, "-c", _CHILD, azurite.connection_string, finding_store.prefix],
                             cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        assert line == "blocked\n", child.stderr.read()
        [doomed] = finding_store.list_runs()[0]
        assert doomed.status == "running" and finding_store.lease_holder(LEASE)[0] == doomed.id
    finally:
        child.kill()
        child.wait()
    refused = _pipeline(finding_store, detection, sample_source, sample_tenant)
    with pytest.raises(AuditAlreadyRunning):  # its lease has not expired yet
        refused.run()

    next_day = datetime.now(UTC) + 24 * HOUR
    outcome = _pipeline(finding_store, detection, sample_source, sample_tenant, lease_clock=lambda: next_day).run()
    assert outcome.run.status == "succeeded"
    assert _statuses(finding_store) == {doomed.id: "abandoned", outcome.run.id: "succeeded"}
    assert finding_store.get_run(doomed.id).trigger == "doomed"
    assert finding_store.lease_holder(LEASE) is None


@pytest.fixture
def lease_held_on_the_default_store(azurite, table_service, monkeypatch):
    """The store the settings name (FINDINGS_CONNECTION_STRING, default table prefix) with another run's lease."""
    monkeypatch.setenv("FINDINGS_CONNECTION_STRING", azurite.connection_string)
    store = TableFindingStore(table_service)
    store.ensure_tables()
    assert store.acquire_lease(LEASE, "another-run", HOUR, datetime.now(UTC))
    yield store
    store.release_lease(LEASE, "another-run")


def _run_ids(store: TableFindingStore) -> set[str]:
    """The runs recorded so far: the default tables are shared with other tests of the session."""
    return {run.id for run in store.list_runs(limit=1000)[0]}


def _one_line_refusal(result) -> None:
    assert result.exit_code == EXIT_ALREADY_RUNNING == 75, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
    refusals = [line for line in result.output.splitlines() if "holds the lease" in line]
    assert len(refusals) == 1 and refusals[0].startswith("another audit run holds the lease until ")


def test_wiaudit_run_refused_by_the_lease_says_so_in_one_line_and_exits_75(lease_held_on_the_default_store,
                                                                           monkeypatch):
    monkeypatch.setenv("LOG_ANALYTICS_WORKSPACE_ID", "5a8c1e3f-7b9d-4f2a-8c6e-0d1b3f5a7c9e")
    monkeypatch.setenv("LOG_ANALYTICS_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("GRAPH_ENDPOINT", "http://127.0.0.1:9")
    for name in ("TEAMS_WEBHOOK_URL", "MAIL_SENDER", "MAIL_TO"):
        monkeypatch.delenv(name, raising=False)
    before = _run_ids(lease_held_on_the_default_store)
    result = CliRunner().invoke(app, ["run"])
    _one_line_refusal(result)
    assert _run_ids(lease_held_on_the_default_store) == before


def test_wiaudit_demo_refused_by_the_lease_says_so_in_one_line_and_exits_75(lease_held_on_the_default_store,
                                                                            sample_tenant, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _run_ids(lease_held_on_the_default_store)
    result = CliRunner().invoke(app, ["demo", "--tenant", str(sample_tenant)])
    _one_line_refusal(result)
    assert _run_ids(lease_held_on_the_default_store) == before


def test_a_killed_demo_does_not_lock_out_the_next_one(finding_store, sample_source, sample_tenant, tmp_path):
    """The demo audits on the sample tenant's fixed clock; its lease is on the wall clock, so the lease of a demo
    killed two hours ago has expired (on the fixed clock it would never expire)."""
    assert finding_store.acquire_lease(LEASE, "killed-demo", HOUR, datetime.now(UTC) - 2 * HOUR)
    pipeline = sample_pipeline(sample_tenant, sample_source, finding_store, tmp_path / "outbox", progress=print)
    pipeline.detections, pipeline.checks = [], []  # the lease is what this test is about: keep the run short
    outcome = pipeline.run(trigger="demo")
    assert outcome.run.started == SAMPLE_NOW and outcome.run.status == "succeeded"
    assert finding_store.lease_holder(LEASE) is None
