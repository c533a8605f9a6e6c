"""The Notifier port and the digest it delivers.

A notifier either delivers the whole digest or raises NotificationError; the pipeline then
leaves the digest's findings pending for that channel, so they go out with the next run.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel

from shared.posture.hygiene import CredentialHygiene
from shared.severity import SEVERITIES, severity_rank
from shared.store.model import StoredFinding


class NotificationError(RuntimeError):
    """Delivery failed; the message says where and why (never the webhook URL or a token)."""


class Digest(BaseModel):
    generated_at: datetime
    run_id: str
    findings: list[StoredFinding]
    findings_query: str  # how to fetch all of them, e.g. "GET /api/findings?since=..."
    hygiene: CredentialHygiene | None = None  # the credential inventory's hygiene section, when one was taken

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(finding.severity for finding in self.findings)
        return {severity: counted.get(severity, 0) for severity in reversed(SEVERITIES)}

    def top(self, limit: int) -> list[StoredFinding]:
        """Most severe first, then most recent."""
        ordered = sorted(self.findings, key=lambda f: (-severity_rank(f.severity), -f.window_end.timestamp()))
        return ordered[:limit]


class Notifier(Protocol):
    channel: str  # "teams", "email": the store keeps what is pending per channel

    def send(self, digest: Digest) -> None: ...
