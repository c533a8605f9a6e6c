"""The Notifier port and the digest it delivers.

A notifier either delivers the whole digest or raises NotificationError; the pipeline then
leaves the digest's findings pending for that channel, so they go out with the next run. When the
channel may have received it anyway (DeliveryUncertain), the findings are not sent again: the next
digest says the earlier one may not have arrived, and why.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, Field

from shared.notify.changes import DigestChanges, TrendPoint
from shared.posture.hygiene import CredentialHygiene
from shared.severity import SEVERITIES, severity_rank
from shared.store.model import StoredFinding


class NotificationError(RuntimeError):
    """Delivery failed; the message says where and why (never the webhook URL or a token)."""


class DigestSection(BaseModel):
    """A short section of its own (e.g. expired suppressions, log coverage), rendered after the findings.

    Lines are plain text (made safe by the renderers); `severity` colours the title in the card and email.
    """

    title: str
    lines: list[str] = Field(default_factory=list)
    severity: str | None = None


class DeliveryUncertain(NotificationError):
    """The channel may have received the message without confirming it (it answered after the client gave up,
    or dropped the connection after the request was sent). Sending again could repeat it, so it is not retried."""


def may_have_arrived(error: BaseException) -> bool:
    """True for an HTTP failure that came after the whole request was sent (no answer in time, or the
    connection dropped before the status line): the receiver may have acted on it."""
    import httpx

    return isinstance(error, (httpx.ReadTimeout, httpx.ReadError, httpx.RemoteProtocolError))


class Digest(BaseModel):
    generated_at: datetime
    run_id: str
    findings: list[StoredFinding]
    findings_query: str  # how to fetch all of them, e.g. "/api/findings?since=..." (absolute with base_url)
    hygiene: CredentialHygiene | None = None  # the credential inventory's hygiene section, when one was taken
    changes: DigestChanges | None = None  # the headline: what changed since the last delivered digest
    trend: list[TrendPoint] = Field(default_factory=list, description="Open findings of recent runs, newest first")
    sections: list[DigestSection] = Field(default_factory=list)
    base_url: str | None = None  # PUBLIC_BASE_URL: links to findings in the API when set

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(finding.severity for finding in self.findings)
        return {severity: counted.get(severity, 0) for severity in reversed(SEVERITIES)}

    @property
    def informational(self) -> list[StoredFinding]:
        """Routine findings: counted apart and collapsed, never listed one by one."""
        return [finding for finding in self.findings if finding.severity == "Informational"]

    def top(self, limit: int) -> list[StoredFinding]:
        """The findings to list (all but Informational): most severe first, then most recent."""
        listed = [finding for finding in self.findings if finding.severity != "Informational"]
        ordered = sorted(listed, key=lambda f: (-severity_rank(f.severity), -f.window_end.timestamp()))
        return ordered[:limit]


class Notifier(Protocol):
    channel: str  # "teams", "email": the store keeps what is pending per channel

    def send(self, digest: Digest) -> None: ...
