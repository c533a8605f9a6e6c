"""A digest is delivered once: a run that stops at any step of notify, or a webhook that answers after the
client gave up, never makes it go out twice; the next digest says when one may not have arrived, and why.

Real parts: the store on Azurite (each table client wrapped to stop the "process" at the Nth call), the
Teams notifier against the local Workflows webhook server made slow.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from fakes import RecordingNotifier
from servers.webhook_server import WebhookServer

from shared.audit.pipeline import AuditPipeline
from shared.directory.port import SnapshotFileDirectory
from shared.notify.teams import TeamsNotifier
from shared.notify.uncertain import TITLE
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.tables import TableFindingStore

LATER = SAMPLE_NOW + timedelta(hours=2)  # past the crashed run's lease (the lease runs on the same fixed clock here)


class Crash(BaseException):
    """The process died: nothing after it runs, not even `except Exception` handlers."""


class Steps:
    """Counts the steps of a run (table calls and the notifier's send) and crashes at step `crash_at`."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.count = 0
        self.crashed = False

    def step(self) -> None:
        if self.crashed:
            raise Crash("the process is gone")
        self.count += 1
        if self.count == self.crash_at:
            self.crashed = True
            raise Crash(f"crash at step {self.count}")


class CrashingTable:
    CALLS = frozenset({"create_entity", "upsert_entity", "update_entity", "delete_entity", "submit_transaction",
                       "query_entities", "get_entity"})

    def __init__(self, inner, steps: Steps) -> None:
        self._inner, self._steps = inner, steps

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if name not in self.CALLS:
            return attribute

        def call(*args, **kwargs):
            self._steps.step()
            return attribute(*args, **kwargs)
        return call


class CrashingNotifier(RecordingNotifier):
    """Delivers (keeps the digest) between two steps: a crash can come just before or just after it."""

    def __init__(self, steps: Steps) -> None:
        super().__init__("teams")
        self.steps = steps

    def send(self, digest) -> None:
        self.steps.step()
        super().send(digest)
        self.steps.step()


def _crashing_store(table_service, prefix: str, steps: Steps) -> TableFindingStore:
    store = TableFindingStore(table_service, prefix=prefix, channels=("teams",))
    for name in ("findings", "index", "outbox", "runs", "meta", "credentials"):
        setattr(store, name, CrashingTable(getattr(store, name), steps))
    return store


def _pipeline(store, notifier, now, tmp_path: Path) -> AuditPipeline:
    """No detections and no directory: the run is the bookkeeping around notify."""
    return AuditPipeline([], None, SnapshotFileDirectory(tmp_path / "none.json"), store, [notifier],
                         clock=lambda: now, checks=[], lease_clock=lambda: now)


def _seeded(table_service, make_finding) -> tuple[str, set[str]]:
    prefix = f"t{uuid.uuid4().hex[:16]}"
    store = TableFindingStore(table_service, prefix=prefix, channels=("teams",))
    store.ensure_tables()
    findings = [make_finding(principal=f"sp{n}", severity=("High", "Low")[n % 2]) for n in range(5)]
    store.upsert_findings(findings, run_id="detect", now=SAMPLE_NOW - timedelta(hours=1))
    return prefix, {finding.id for finding in findings}


def test_a_crash_at_any_step_of_notify_never_sends_a_finding_twice(table_service, make_finding, tmp_path):
    prefix, _ = _seeded(table_service, make_finding)
    counting = Steps()
    _pipeline(_crashing_store(table_service, prefix, counting), CrashingNotifier(counting), SAMPLE_NOW,
              tmp_path).run()
    steps = counting.count
    assert steps > 10

    uncertain_points = 0
    for crash_at in range(1, steps + 1):
        prefix, ids = _seeded(table_service, make_finding)
        crashing = Steps(crash_at)
        notifier = CrashingNotifier(crashing)
        with pytest.raises(Crash):
            _pipeline(_crashing_store(table_service, prefix, crashing), notifier, SAMPLE_NOW, tmp_path).run()
        first = list(notifier.sent)
        rerun = RecordingNotifier("teams")
        store = TableFindingStore(table_service, prefix=prefix, channels=("teams",))
        outcome = _pipeline(store, rerun, LATER, tmp_path).run()
        _pipeline(store, rerun, LATER + timedelta(hours=1), tmp_path).run()  # a third run: nothing is left over

        sent = Counter(finding.id for digest in first + rerun.sent for finding in digest.findings)
        assert max(sent.values(), default=0) <= 1, f"crash at step {crash_at} of {steps} resent {sent}"
        assert outcome.run.errors.keys() <= {"inventory"}, (crash_at, outcome.run.errors)
        assert len(rerun.sent) <= 1, f"crash at step {crash_at}: {len(rerun.sent)} digests after it"
        reported = [line for section in (rerun.sent[0].sections if rerun.sent else []) if section.title == TITLE
                    for line in section.lines]
        if reported:  # the crash came after the intent was recorded: the digest may have gone, so it is not resent
            uncertain_points += 1
            assert len(reported) == 1 and f"({len(ids)} findings) may not have arrived" in reported[0]
            assert "stopped after it began sending" in reported[0]
            assert sent.keys() == (ids if first else set()), crash_at
        else:
            assert sent.keys() == ids, f"crash at step {crash_at}: {sent}"
    assert uncertain_points >= 2  # just before the send and just after it, at least


def test_a_webhook_that_answers_late_gets_each_finding_once_and_hears_why(table_service, make_finding, tmp_path):
    prefix, ids = _seeded(table_service, make_finding)
    store = TableFindingStore(table_service, prefix=prefix, channels=("teams",))
    with WebhookServer() as webhook:
        notifier = TeamsNotifier(webhook.webhook_url, timeout=1, max_retries=3, backoff=0.01)
        webhook.answer_late()
        try:
            slow = _pipeline(store, notifier, SAMPLE_NOW, tmp_path).run()
        finally:
            webhook.release()
        assert "not sent again" in slow.run.errors["notify:teams"]
        assert len(webhook.received) == 1  # no retry of a post that went through
        newer = make_finding(principal="sp-new", severity="Medium")
        store.upsert_findings([newer], run_id="detect2", now=SAMPLE_NOW + timedelta(minutes=30))
        prompt = TeamsNotifier(webhook.webhook_url, max_retries=3, backoff=0.01)  # the default timeout: no load flake
        _pipeline(store, prompt, SAMPLE_NOW + timedelta(hours=1), tmp_path).run()
        _pipeline(store, prompt, SAMPLE_NOW + timedelta(hours=2), tmp_path).run()
    cards = [received.body.decode() for received in webhook.received]
    assert len(cards) == 2
    assert all(f"name-sp{n}" in cards[0] and f"name-sp{n}" not in cards[1] for n in range(len(ids)))
    assert "may not have arrived" in cards[1] and "5 findings" in cards[1] and "name-sp-new" in cards[1]
    assert "may not have arrived" not in cards[0]
