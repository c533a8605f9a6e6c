"""Post the digest card to a Teams Workflows webhook (the successor of the retired Office 365 connectors).

The webhook URL carries a signature (`sig=...`) that is all it takes to post into the channel: it is a
secret (a Key Vault reference in Azure). It never appears in an error message or log line from here,
and neither does anything the webhook echoes back that looks like it.

Delivery: httpx, one POST of `teams_card.serialize(teams_message(digest))`. Workflows answers
202 Accepted; any 2xx is success. 408, 429, 5xx and connection failures are retried with exponential
backoff, or after the Retry-After the webhook asks for, at most `max_retries` times and never waiting
longer than `max_retry_after` seconds at once; then NotificationError, and the pipeline leaves the
findings pending for the next run. Other 4xx are not retried (the request itself is wrong). Redirects
are not followed (a signed URL has no business redirecting the card elsewhere).

A post the webhook may have taken is never retried: when the whole request went out and no answer came
(read timeout, connection dropped before the status line), the workflow may well have run and posted
the card. Workflows takes no idempotency key, so a retry could post it twice: DeliveryUncertain instead,
and the next digest says this one may not have arrived.
"""

from __future__ import annotations

import email.utils
import random
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

from shared.notify.port import DeliveryUncertain, Digest, NotificationError, may_have_arrived
from shared.notify.teams_card import serialize, teams_message

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_SIGNATURE = re.compile(r"(?i)\b(sig|signature|code|sv|sp)=[^&\s\"'<>]+")
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def _retry_after(value: str | None) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class TeamsNotifier:
    """Posts the digest card to a Teams Workflows webhook; channel "teams".

    `transport`: an httpx transport to use instead of the network one (tests, proxies).
    `max_retries`, `backoff`, `max_retry_after`: the retry bounds (see the module docstring).
    """

    channel = "teams"

    def __init__(self, webhook_url: str, timeout: float = 30, transport: httpx.BaseTransport | None = None, *,
                 max_retries: int = 3, backoff: float = 2.0, max_retry_after: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        parts = urlsplit(webhook_url.strip())
        if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS):
            # Never echo the URL: it is a signed secret.
            raise ValueError("the Teams webhook URL must be an https:// URL (plain http only to a loopback host)")
        if not parts.hostname:
            raise ValueError("the Teams webhook URL has no host")
        if max_retries < 0 or backoff < 0 or max_retry_after < 0:
            raise ValueError("max_retries, backoff and max_retry_after must not be negative")
        self._url = webhook_url.strip()
        # What must never be repeated: the URL, its path and query, and each query value long enough to be a key.
        values = [value for _, value in parse_qsl(parts.query) if len(value) >= 8]
        values += [quote(value, safe="") for value in values]
        self._secrets = [s for s in (self._url, parts.path + ("?" + parts.query if parts.query else ""), parts.query,
                                     *values) if s]
        self.timeout = timeout
        self.transport = transport
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_retry_after = max_retry_after
        self.sleep = sleep

    def __repr__(self) -> str:  # the URL is a secret: keep it out of reprs in logs and tracebacks
        return f"TeamsNotifier(webhook_url=<redacted>, timeout={self.timeout})"

    def redact(self, text: str) -> str:
        """`text` without the webhook URL, its path and query, or anything that looks like a signature."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "<redacted>")
        return _SIGNATURE.sub(lambda m: f"{m.group(1)}=<redacted>", text)

    def send(self, digest: Digest) -> None:
        self.post(serialize(teams_message(digest)))

    def post(self, body: bytes) -> None:
        """POST an already serialized message, retrying as described; NotificationError when it cannot."""
        attempts = self.max_retries + 1
        with httpx.Client(transport=self.transport, timeout=self.timeout, follow_redirects=False) as client:
            for attempt in range(attempts):
                wait: float | None = None
                try:
                    response = client.post(self._url, content=body,
                                           headers={"Content-Type": "application/json; charset=utf-8"})
                except httpx.HTTPError as error:
                    if may_have_arrived(error):
                        raise DeliveryUncertain(
                            f"the Teams webhook got the digest but gave no answer ({type(error).__name__}, "
                            f"waited {self.timeout:g} s), and a webhook post cannot be checked or sent "
                            "idempotently, so it is not sent again") from None
                    problem = self.redact(f"{type(error).__name__}: {error}")
                else:
                    if response.is_success:
                        return
                    problem = f"HTTP {response.status_code}"
                    detail = self.redact(" ".join(response.text.split()))[:200]
                    if detail:
                        problem += f": {detail}"
                    if response.status_code not in RETRYABLE_STATUSES:
                        raise NotificationError(f"the Teams webhook refused the digest ({problem}); "
                                                "not retried, check the workflow and its URL setting")
                    wait = _retry_after(response.headers.get("Retry-After"))
                if attempt == attempts - 1:
                    break
                if wait is None:
                    wait = self.backoff * 2 ** attempt * (1 + random.random() / 10)
                if wait > self.max_retry_after:
                    raise NotificationError(f"the Teams webhook asked to retry after {wait:.0f} s ({problem}), "
                                            f"more than the {self.max_retry_after:.0f} s this run waits; "
                                            "the digest stays pending for the next run")
                self.sleep(wait)
        raise NotificationError(f"the Teams webhook did not accept the digest after {attempts} "
                                f"attempt{'s' if attempts != 1 else ''} ({problem})")
