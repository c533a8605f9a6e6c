"""TeamsNotifier against a local Workflows webhook (tests/servers/webhook_server.py): real HTTP, no mocks."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from servers.webhook_server import WebhookServer
from test_notify_render import make_digest, small_digest, stored_finding

from shared.notify.port import DeliveryUncertain, NotificationError
from shared.notify.teams import TeamsNotifier
from shared.notify.teams_card import serialize, teams_message


@pytest.fixture
def webhook() -> Iterator[WebhookServer]:
    with WebhookServer() as server:
        yield server


def _assert_no_secret(error: BaseException, server: WebhookServer) -> None:
    for text in (str(error), repr(error), repr(error.__cause__), repr(error.__context__)):
        assert server.signature not in text
        assert server.path not in text
        assert server.webhook_url not in text


def test_posts_the_card_and_the_webhook_accepts_it(webhook: WebhookServer) -> None:
    digest = small_digest()
    TeamsNotifier(webhook.webhook_url).send(digest)
    assert len(webhook.received) == 1
    received = webhook.received[0]
    assert received.path == webhook.path and received.query["sig"] == webhook.signature
    assert received.headers["content-type"].startswith("application/json")
    assert received.body == serialize(teams_message(digest))
    assert received.json() == teams_message(digest)


def test_failing_webhook_raises_after_bounded_retries_without_the_url_then_recovers(webhook: WebhookServer) -> None:
    notifier = TeamsNotifier(webhook.webhook_url, max_retries=2, backoff=0.01)
    webhook.fail(500, times=3)  # the server echoes the signed URL in its error body
    with pytest.raises(NotificationError) as caught:
        notifier.send(small_digest())
    assert len(webhook.received) == 3  # the first try and two retries, then it gave up
    assert "after 3 attempts" in str(caught.value) and "HTTP 500" in str(caught.value)
    assert "<redacted>" in str(caught.value)
    _assert_no_secret(caught.value, webhook)

    notifier.send(small_digest())  # the webhook recovered: the next run delivers
    assert len(webhook.received) == 4


def test_retry_after_of_429_is_honoured(webhook: WebhookServer) -> None:
    webhook.fail(429, times=1, retry_after=1)
    TeamsNotifier(webhook.webhook_url, backoff=0).send(small_digest())  # no backoff of its own: only Retry-After
    first, second = webhook.received
    assert second.at - first.at >= 0.95
    assert second.body == first.body


def test_retry_after_longer_than_the_run_waits_fails_at_once(webhook: WebhookServer) -> None:
    webhook.fail(429, times=1, retry_after=3600)
    with pytest.raises(NotificationError, match="retry after 3600 s") as caught:
        TeamsNotifier(webhook.webhook_url, max_retry_after=30).send(small_digest())
    assert len(webhook.received) == 1
    _assert_no_secret(caught.value, webhook)


def test_a_rejected_request_is_not_retried(webhook: WebhookServer) -> None:
    webhook.fail(400, times=1)
    with pytest.raises(NotificationError, match="HTTP 400") as caught:
        TeamsNotifier(webhook.webhook_url, backoff=0.01).send(small_digest())
    assert len(webhook.received) == 1
    _assert_no_secret(caught.value, webhook)


def test_a_wrong_signature_is_reported_without_either_signature(webhook: WebhookServer) -> None:
    wrong = webhook.webhook_url.replace(webhook.signature, "not-the-signature-0123456789")
    with pytest.raises(NotificationError, match="HTTP 401") as caught:
        TeamsNotifier(wrong).send(small_digest())
    assert "not-the-signature" not in str(caught.value)  # the server echoed it; the notifier redacted it
    _assert_no_secret(caught.value, webhook)


def test_unreachable_webhook_is_a_notification_error_without_the_url() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/workflows/abc/triggers/manual/paths/invoke?sig=SECRETSIGNATURE123"
    with pytest.raises(NotificationError, match="after 2 attempts") as caught:
        TeamsNotifier(url, max_retries=1, backoff=0.01, timeout=2).send(small_digest())
    assert "SECRETSIGNATURE123" not in str(caught.value) and "/workflows/abc" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__context__ is None  # no chained httpx error


def test_url_must_be_https_and_is_never_echoed() -> None:
    with pytest.raises(ValueError, match="https") as caught:
        TeamsNotifier("http://prod-00.westeurope.logic.azure.com/workflows/x?sig=SECRET1")
    assert "SECRET1" not in str(caught.value)
    notifier = TeamsNotifier("https://prod-00.westeurope.logic.azure.com/workflows/x?sig=SECRET2")
    assert "SECRET2" not in repr(notifier)
    assert notifier.channel == "teams"


def test_a_large_digest_posts_under_the_size_limit(webhook: WebhookServer) -> None:
    digest = make_digest([stored_finding(n, summary="s" * 2000) for n in range(500)])
    TeamsNotifier(webhook.webhook_url).send(digest)
    assert len(webhook.received[0].body) < 28_000


def test_a_webhook_that_answers_after_the_timeout_gets_the_card_once(webhook: WebhookServer) -> None:
    """The post went through but the answer came too late: retrying would post the card again."""
    webhook.answer_late()
    try:
        with pytest.raises(DeliveryUncertain) as raised:
            TeamsNotifier(webhook.webhook_url, timeout=1, max_retries=3, backoff=0.01).send(small_digest())
    finally:
        webhook.release()
    assert len(webhook.received) == 1
    assert "not sent again" in str(raised.value)
    _assert_no_secret(raised.value, webhook)
