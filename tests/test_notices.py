"""Owner notices: who is told what, once per credential, threshold and recipient, through the real Graph
sendMail adapter (a local receiver) with the notice memory in Azurite; the dry run; the demo's outbox."""

from __future__ import annotations

import base64
import json
from contextlib import contextmanager
from datetime import timedelta

import pytest
from azure.identity import ManagedIdentityCredential
from fakes import RecordingNotifier
from servers.token_server import ManagedIdentityTokenServer
from test_credentials_store import NOW, make_record
from test_digest_layout import _render
from test_notify_mail import SendMailServer, anonymous_client
from typer.testing import CliRunner

from shared.audit.lease import LeaseLost
from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.cli import app
from shared.directory.model import DirectorySnapshot
from shared.directory.model import Owner as GraphOwner
from shared.directory.port import SnapshotFileDirectory
from shared.notices.factory import owner_notices_from_settings
from shared.notices.plan import NoticeSettings, concerns, plan_notices
from shared.notices.render import notice_email
from shared.notices.run import OwnerNotices
from shared.notices.send import GraphNoticeSender, OutboxNoticeSender
from shared.notify.mail import GraphMailbox
from shared.notify.teams_card import teams_message
from shared.posture.model import Owner
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.settings import SettingsError, read_setting

SENDER = "audit-digest@contoso.com"
ALICE = Owner(id="u-alice", name="alice@contoso.com", type="user", mail="alice@contoso.com")
BOB = Owner(id="u-bob", name="bob@contoso.com", type="user", mail="Bob@Contoso.com")
GUEST = Owner(id="u-guest", name="partner_fabrikam.com#EXT#", type="user", mail="partner@fabrikam.com")
NO_MAILBOX = Owner(id="u-nomail", name="svc-admin@contoso.com", type="user")
AUTOMATION = Owner(id="sp-automation", name="deploy-automation", type="servicePrincipal")
ON = NoticeSettings(enabled=True)


def _records():
    """payments: in use, ends in 12 days (alice, bob); nightly: expired (alice); crm: unused (guest only);
    vendor: expiring, owned by a service principal; forgotten: expired, owned by a user without a mailbox."""
    return [
        make_record(1, end_days=12, used_days_ago=1, principal_name="deploy-payments", owners=[ALICE, BOB],
                    display_name="payments-secret"),
        make_record(2, end_days=-20, used_days_ago=25, principal_name="nightly-export", owners=[ALICE],
                    display_name="old-secret"),
        make_record(3, end_days=160, used_days_ago=45, principal_name="legacy-crm-connector", owners=[GUEST],
                    type="certificate", display_name="crm-cert"),
        make_record(4, end_days=3, used_days_ago=2, principal_name="vendor-sync", owners=[AUTOMATION]),
        make_record(5, end_days=-1, used_days_ago=None, principal_name="forgotten-app", owners=[NO_MAILBOX]),
        make_record(6, end_days=5, used_days_ago=1, principal_name="web-identity", principal_type="managed identity",
                    owners=[ALICE]),
    ]


def test_concerns_follow_the_thresholds_and_the_hygiene_definitions():
    def of(end_days, used_days_ago, settings=ON):
        return concerns(make_record(end_days=end_days, used_days_ago=used_days_ago), NOW, settings)

    assert of(12, 1) == ["expiring-14"]
    assert of(30, 1) == ["expiring-30"] and of(31, 1) == []
    assert of(7, 1) == ["expiring-7"] and of(0.5, 1) == ["expiring-1"]
    assert of(-2, 1) == ["expired"]
    assert of(100, 45) == ["unused"]
    assert of(10, 45) == ["expiring-14", "unused"]
    custom = NoticeSettings(enabled=True, days=read_setting("OWNER_NOTICE_DAYS", {"OWNER_NOTICE_DAYS": "3, 60"}))
    assert custom.days == (60, 3) and of(12, 1, custom) == ["expiring-60"] and of(2, 1, custom) == ["expiring-3"]


@pytest.mark.parametrize("raw", ["0,7", "seven", ""])
def test_bad_notice_days_name_the_setting(raw):
    if not raw:
        assert read_setting("OWNER_NOTICE_DAYS", {}) == (30, 14, 7, 1)
        return
    with pytest.raises(SettingsError, match="OWNER_NOTICE_DAYS"):
        read_setting("OWNER_NOTICE_DAYS", {"OWNER_NOTICE_DAYS": raw})


def test_each_owner_gets_their_applications_and_the_rest_falls_back_to_the_digest():
    plan = plan_notices(_records(), NOW, ON)
    by_recipient = {notice.recipient: [(i.record.principal_name, i.concern) for i in notice.items]
                    for notice in plan.notices}
    assert by_recipient == {
        "alice@contoso.com": [("nightly-export", "expired"), ("deploy-payments", "expiring-14")],
        "Bob@Contoso.com": [("deploy-payments", "expiring-14")],
        "partner@fabrikam.com": [("legacy-crm-connector", "unused")],
    }
    unowned = {app.principal_name: app.reason for app in plan.unowned}
    assert unowned == {"forgotten-app": "no owner has a mailbox",
                       "vendor-sync": "its owners are service principals or groups, not people"}


def test_allowed_domains_keep_notices_inside_them():
    domains = read_setting("OWNER_NOTICE_DOMAINS", {"OWNER_NOTICE_DOMAINS": "Contoso.com"})
    plan = plan_notices(_records(), NOW, NoticeSettings(enabled=True, domains=domains))
    assert [notice.recipient for notice in plan.notices] == ["alice@contoso.com", "Bob@Contoso.com"]
    crm = next(app for app in plan.unowned if app.principal_name == "legacy-crm-connector")
    assert crm.reason == "no owner has a mailbox in an allowed domain (contoso.com)"
    with pytest.raises(SettingsError, match="OWNER_NOTICE_DOMAINS"):
        read_setting("OWNER_NOTICE_DOMAINS", {"OWNER_NOTICE_DOMAINS": "contoso"})


@pytest.fixture
def graph():
    with SendMailServer() as server:
        yield server


def _notices(graph, settings=ON) -> OwnerNotices:
    return OwnerNotices(GraphNoticeSender(GraphMailbox(SENDER, anonymous_client(graph), max_retries=0,
                                                       retry_delay=0)), settings)


def _mail(sent) -> tuple[str, str, str]:
    message = sent.body["Message"]
    text = base64.b64decode(message["attachments"][0]["contentBytes"]).decode()
    return message["toRecipients"][0]["emailAddress"]["address"], message["subject"], text


def _leased() -> None:
    """The run still holds its lease."""


def test_sent_once_per_credential_and_threshold_across_retries_and_reruns(finding_store, graph):
    records = _records()
    graph.failures = [503]  # the first email fails: it stays due, the others go
    first = _notices(graph).send(finding_store, records, NOW, "run-1", _leased)
    assert len(graph.sent) == 2 and len(first.errors) == 1
    assert first.sent.keys() | {next(iter(first.errors)).removeprefix("notice:")} == {
        "alice@contoso.com", "Bob@Contoso.com", "partner@fabrikam.com"}
    second = _notices(graph).send(finding_store, records, NOW + timedelta(hours=1), "run-2", _leased)
    assert second.errors == {} and len(graph.sent) == 3  # the failed one, and nothing twice
    _notices(graph).send(finding_store, records, NOW + timedelta(hours=2), "run-3", _leased)
    assert len(graph.sent) == 3
    assert sorted(_mail(sent)[0] for sent in graph.sent) == ["Bob@Contoso.com", "alice@contoso.com",
                                                             "partner@fabrikam.com"]
    assert all(sent.user == SENDER for sent in graph.sent)

    alice = next(_mail(sent) for sent in graph.sent if _mail(sent)[0] == "alice@contoso.com")
    assert alice[1] == "Action needed: 2 credentials of your applications, the first ending 2026-03-20"
    text = alice[2]
    assert "deploy-payments" in text and "nightly-export" in text
    assert 'secret "payments-secret" (key id 30000000…)' in text
    assert "Ends on 2026-03-20, in 12 days, and deploy-payments signs in with it" in text
    assert "add a new secret, switch deploy-payments over to it" in text and "federated credential" in text
    assert "Expired on 2026-02-16 and still on nightly-export: remove it" in text
    assert "App registrations › nightly-export › Certificates & secrets" in text
    assert "['" not in text and "+00:00" not in text

    # six days on, deploy-payments crosses the 7-day threshold: told once more, with nothing already told
    later = [make_record(1, end_days=6, used_days_ago=1, principal_name="deploy-payments", owners=[ALICE, BOB],
                         display_name="payments-secret"), *records[1:]]
    _notices(graph).send(finding_store, later, NOW, "run-4", _leased)
    _notices(graph).send(finding_store, later, NOW + timedelta(hours=1), "run-5", _leased)
    assert len(graph.sent) == 5
    assert {_mail(sent)[0] for sent in graph.sent[3:]} == {"alice@contoso.com", "Bob@Contoso.com"}
    assert all("in 6 days" in _mail(sent)[2] and "nightly-export" not in _mail(sent)[2] for sent in graph.sent[3:])


class Crash(BaseException):
    """The process died."""


class CrashingSender:
    def __init__(self, inner, after_send: bool) -> None:
        self.inner, self.after_send = inner, after_send

    def send_notice(self, recipient, content, at) -> None:
        if self.after_send:
            self.inner.send_notice(recipient, content, at)
        raise Crash(recipient)


@pytest.mark.parametrize("after_send", [True, False], ids=["after-send", "before-send"])
def test_a_crash_between_send_and_record_never_resends_and_says_so(finding_store, graph, after_send):
    records = _records()[:1]  # deploy-payments: alice and bob
    crashing = OwnerNotices(CrashingSender(_notices(graph).sender, after_send), ON)
    with pytest.raises(Crash):
        crashing.send(finding_store, records, NOW, "run-1", _leased)
    sent_before = len(graph.sent)
    assert sent_before == (1 if after_send else 0)
    rerun = _notices(graph).send(finding_store, records, NOW + timedelta(hours=2), "run-2", _leased)
    _notices(graph).send(finding_store, records, NOW + timedelta(hours=3), "run-3", _leased)
    recipients = [_mail(sent)[0] for sent in graph.sent]
    assert len(recipients) == len(set(recipients)) == sent_before + 1  # the other owner, once; nobody twice
    (error,) = rerun.errors.values()
    assert "may not have arrived" in error and "stopped between sending it and recording it" in error


def test_a_run_that_lost_its_lease_stops_sending_and_the_holder_sends_the_rest(finding_store, graph):
    renewals = []

    def lose_after_one_email() -> None:
        renewals.append(1)
        if len(renewals) > 1:
            raise LeaseLost("run-1 lost the audit lease to another run")

    with pytest.raises(LeaseLost):
        _notices(graph).send(finding_store, _records(), NOW, "run-1", lose_after_one_email)
    assert [_mail(sent)[0] for sent in graph.sent] == ["alice@contoso.com"]
    _notices(graph).send(finding_store, _records(), NOW, "run-2", _leased)  # the lease holder sends the rest
    assert sorted(_mail(sent)[0] for sent in graph.sent) == ["Bob@Contoso.com", "alice@contoso.com",
                                                             "partner@fabrikam.com"]


runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture
def stored(finding_store, monkeypatch):
    finding_store.replace_inventory(_records(), NOW)

    @contextmanager
    def fake_local_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", fake_local_store)
    return finding_store


def test_dry_run_shows_who_would_get_what_and_sends_nothing(stored, graph, monkeypatch):
    monkeypatch.setenv("OWNER_NOTICE_DOMAINS", "contoso.com")
    result = runner.invoke(app, ["notices", "--dry-run"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "notices are off (OWNER_NOTICES is not true" in out and "Only to mailboxes in contoso.com" in out
    assert "To alice@contoso.com (alice@contoso.com): Action needed: 2 credentials" in out
    assert "To Bob@Contoso.com" in out and "partner@fabrikam.com" not in out
    assert "deploy-payments · secret payments-secret (30000000…) · expiring-14" in out
    assert "No owner to notify (3 applications" in out
    assert "legacy-crm-connector: 1 credential — no owner has a mailbox in an allowed domain (contoso.com)" in out
    assert graph.sent == []

    _notices(graph).send(stored, _records(), NOW, "run-1", _leased)  # once sent, a dry run has nothing left
    monkeypatch.setenv("OWNER_NOTICES", "true")
    again = runner.invoke(app, ["notices", "--dry-run"])
    assert "notices are on" in again.output and "Nobody would get a notice" in again.output
    refused = runner.invoke(app, ["notices"])
    assert refused.exit_code == 2 and "--dry-run" in refused.output


def test_the_audit_sends_notices_after_the_inventory_once_and_the_digest_lists_who_has_no_owner(
        sample_tenant, sample_source, finding_store, tmp_path):
    snapshot = DirectorySnapshot.load(sample_tenant / "directory.json")
    payments = next(app for app in snapshot.applications if app.displayName == "deploy-payments")
    nightly = next(app for app in snapshot.applications if app.displayName == "nightly-export")
    nightly.owners = [GraphOwner(id="5c1f7a52-8d0e-4a51-9b8e-0a6f2f4c7d11", type="servicePrincipal",
                                 displayName="release-automation")]
    snapshot.save(tmp_path / "directory.json")
    outbox = tmp_path / "outbox"
    teams = RecordingNotifier("teams")

    def audit(now):
        notices = OwnerNotices(OutboxNoticeSender(outbox), ON)
        pipeline = AuditPipeline([], sample_source, SnapshotFileDirectory(tmp_path / "directory.json"), finding_store,
                                 [teams], clock=lambda: now, config=AuditConfig(max_lookback=timedelta(days=2)),
                                 notices=notices)
        return pipeline.run(), notices

    first, notices = audit(SAMPLE_NOW)
    assert first.run.status == "succeeded", first.run.errors
    owners = {owner.mail for owner in payments.owners}
    assert owners <= set(first.noticed) and all(count > 0 for count in first.noticed.values())
    files = sorted(path.name for path in notices.sender.written)
    assert len(files) == 2 * len(first.noticed)
    payments_notice = next((outbox / name).read_text() for name in files
                           if name.endswith(".txt") and next(iter(owners)).replace("@", "_") in name)
    assert "deploy-payments" in payments_notice and "and deploy-payments signs in with it" in payments_notice
    (section,) = [section for section in teams.sent[0].sections if section.title == "No owner to notify"]
    assert "nightly-export: 1 credential needs action, but its owners are service principals or groups, not " \
           "people" in section.lines
    assert "No owner to notify" in json.dumps(teams_message(teams.sent[0]))

    again, notices = audit(SAMPLE_NOW + timedelta(hours=1))
    assert again.noticed == {} and notices.sender.written == []


def test_notices_from_settings_are_off_by_default_and_sent_from_the_digest_mailbox(finding_store, monkeypatch):
    assert owner_notices_from_settings(object(), {}) is None  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="MAIL_SENDER"):
        owner_notices_from_settings(object(), {"OWNER_NOTICES": "true"})  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="OWNER_NOTICES"):
        owner_notices_from_settings(object(), {"OWNER_NOTICES": "yes"})  # type: ignore[arg-type]
    with ManagedIdentityTokenServer() as tokens, SendMailServer(token_server=tokens) as graph:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        environ = {"OWNER_NOTICES": "true", "MAIL_SENDER": SENDER, "GRAPH_ENDPOINT": graph.url,
                   "OWNER_NOTICE_DAYS": "14", "OWNER_NOTICE_DOMAINS": "contoso.com"}
        notices = owner_notices_from_settings(ManagedIdentityCredential(), environ)
        assert notices is not None and notices.settings.days == (14,)
        notices.send(finding_store, _records(), NOW, "run-1", _leased)
        assert sorted(_mail(sent)[0] for sent in graph.sent) == ["Bob@Contoso.com", "alice@contoso.com"]
        assert {sent.user for sent in graph.sent} == {SENDER}


def test_the_notice_reads_on_a_phone_without_sideways_scrolling(tmp_path):
    """One column at 375 px in Debian's chromium, even with names nobody can wrap."""
    long = make_record(1, end_days=12, used_days_ago=1, principal_name="payroll-sync-" + "x" * 60 + "-nowrap",
                       owners=[ALICE], display_name="k" * 90)
    notice = plan_notices([long, _records()[1]], NOW, ON).notices[0]
    measured, screenshot = _render(notice_email(notice, NOW, ON.unused_for, ON.days).html, 375, tmp_path)
    assert measured["inner"] == 375 and measured["scroll"] <= measured["inner"], measured
    assert screenshot.stat().st_size > 10_000
