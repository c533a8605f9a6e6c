"""OutboxNotifier (files per channel, then the wrapped notifier) and notifiers_from_settings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers.webhook_server import WebhookServer
from test_notify_render import make_digest, small_digest, stored_finding

from shared.notify.email import email_message
from shared.notify.factory import notifiers_from_settings
from shared.notify.mail import GraphMailNotifier
from shared.notify.outbox import OutboxNotifier
from shared.notify.port import NotificationError
from shared.notify.teams import TeamsNotifier
from shared.notify.teams_card import teams_message
from shared.settings import SettingsError


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def test_teams_outbox_writes_the_card(tmp_path: Path) -> None:
    digest = small_digest()
    outbox = OutboxNotifier(None, tmp_path / "outbox", channel="teams")
    assert outbox.channel == "teams"
    outbox.send(digest)
    path = tmp_path / "outbox" / "run-20240502-teams.json"
    assert outbox.written == [path]
    assert json.loads(path.read_text(encoding="utf-8")) == teams_message(digest)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temporary files left


def test_email_outbox_writes_html_and_text(tmp_path: Path) -> None:
    digest = small_digest()
    outbox = OutboxNotifier(None, tmp_path, channel="email")
    paths = outbox.write(digest)
    assert paths == [tmp_path / "run-20240502-email.html", tmp_path / "run-20240502-email.txt"]
    content = email_message(digest)
    assert paths[0].read_text(encoding="utf-8") == content.html
    assert paths[1].read_text(encoding="utf-8") == content.text


def test_a_second_run_overwrites_nothing_of_the_first(tmp_path: Path) -> None:
    outbox = OutboxNotifier(None, tmp_path, channel="teams")
    outbox.send(make_digest([stored_finding(1)], run_id="run-1"))
    outbox.send(make_digest([stored_finding(2)], run_id="run-2"))
    assert [p.name for p in outbox.written] == ["run-1-teams.json", "run-2-teams.json"]


def test_run_id_cannot_escape_the_folder(tmp_path: Path) -> None:
    outbox = OutboxNotifier(None, tmp_path / "box", channel="teams")
    (path,) = outbox.write(make_digest([stored_finding(1)], run_id="../../etc/passwd"))
    assert path.parent == tmp_path / "box" and path.name == "etc_passwd-teams.json"


def test_wrapping_delivers_after_writing(tmp_path: Path, webhook: WebhookServer) -> None:
    digest = small_digest()
    outbox = OutboxNotifier(TeamsNotifier(webhook.webhook_url), tmp_path)
    assert outbox.channel == "teams"
    outbox.send(digest)
    assert json.loads(outbox.written[0].read_text(encoding="utf-8")) == webhook.received[0].json()


def test_files_are_kept_when_delivery_fails(tmp_path: Path, webhook: WebhookServer) -> None:
    webhook.fail(500, times=5)
    outbox = OutboxNotifier(TeamsNotifier(webhook.webhook_url, max_retries=1, backoff=0.01), tmp_path)
    with pytest.raises(NotificationError):
        outbox.send(small_digest())
    assert outbox.written[0].exists()


def test_unwritable_outbox_is_a_notification_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    with pytest.raises(NotificationError, match="could not write the teams digest"):
        OutboxNotifier(None, blocker, channel="teams").send(small_digest())


def test_unwritable_copy_does_not_stop_delivery(tmp_path: Path, webhook: WebhookServer) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("", encoding="utf-8")
    OutboxNotifier(TeamsNotifier(webhook.webhook_url), blocker).send(small_digest())
    assert len(webhook.received) == 1


def test_channel_must_be_known_and_agree(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no outbox rendering"):
        OutboxNotifier(None, tmp_path, channel="sms")
    with pytest.raises(ValueError, match="needs a channel"):
        OutboxNotifier(None, tmp_path)
    with pytest.raises(ValueError, match="does not match"):
        OutboxNotifier(TeamsNotifier("https://example.invalid/x"), tmp_path, channel="email")


# --- notifiers_from_settings -----------------------------------------------------------------------------

WEBHOOK = "https://prod-00.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=SIGNATURE42"
MAIL = {"MAIL_SENDER": "audit-digest@contoso.com", "MAIL_TO": "secops@contoso.com"}


class _Credential:
    def get_token(self, *scopes: str, **kwargs: object) -> object:  # never called: nothing is sent here
        raise AssertionError("no token expected")


def test_no_channel_configured() -> None:
    assert notifiers_from_settings(_Credential(), {}) == []


def test_outbox_alone_writes_both_renderings(tmp_path: Path) -> None:
    notifiers = notifiers_from_settings(_Credential(), {}, outbox=tmp_path)
    assert [(type(n), n.channel, n.inner) for n in notifiers] == [
        (OutboxNotifier, "teams", None), (OutboxNotifier, "email", None)]


def test_teams_and_email_from_settings(tmp_path: Path) -> None:
    notifiers = notifiers_from_settings(_Credential(), {"TEAMS_WEBHOOK_URL": WEBHOOK, **MAIL})
    assert [type(n) for n in notifiers] == [TeamsNotifier, GraphMailNotifier]
    assert [n.channel for n in notifiers] == ["teams", "email"]
    assert notifiers[1].recipients == ["secops@contoso.com"]

    wrapped = notifiers_from_settings(_Credential(), {"TEAMS_WEBHOOK_URL": WEBHOOK}, outbox=tmp_path)
    assert len(wrapped) == 1 and isinstance(wrapped[0], OutboxNotifier)
    assert isinstance(wrapped[0].inner, TeamsNotifier) and wrapped[0].channel == "teams"


def test_half_configured_email_names_the_missing_setting() -> None:
    with pytest.raises(SettingsError, match="MAIL_TO"):
        notifiers_from_settings(_Credential(), {"MAIL_SENDER": "audit-digest@contoso.com"})
    with pytest.raises(SettingsError, match="MAIL_SENDER"):
        notifiers_from_settings(_Credential(), {"MAIL_TO": "secops@contoso.com"})


def test_bad_webhook_setting_is_named_without_its_value() -> None:
    with pytest.raises(SettingsError, match="TEAMS_WEBHOOK_URL") as caught:
        notifiers_from_settings(_Credential(), {"TEAMS_WEBHOOK_URL": WEBHOOK.replace("https://", "http://")})
    assert "SIGNATURE42" not in str(caught.value) and "logic.azure.com" not in str(caught.value)
