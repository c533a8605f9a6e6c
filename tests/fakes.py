"""In-repo fakes of the product's own ports (never of an SDK an adapter exists to call)."""

from __future__ import annotations

from shared.logsource.base import LogQueryError
from shared.notify.port import Digest, NotificationError


class RecordingNotifier:
    """A Notifier that keeps what it was sent and can refuse the first `failures` digests."""

    def __init__(self, channel: str, failures: int = 0) -> None:
        self.channel = channel
        self.failures = failures
        self.sent: list[Digest] = []

    def send(self, digest: Digest) -> None:
        if self.failures:
            self.failures -= 1
            raise NotificationError(f"{self.channel} receiver answered 500")
        self.sent.append(digest)


class FailingFor:
    """A LogSource that fails every query containing `marker` and answers the others from `inner`."""

    def __init__(self, inner, marker: str) -> None:
        self.inner, self.marker = inner, marker

    def query(self, kql, start, end):
        if self.marker in kql:
            raise LogQueryError("workspace answered 500 InternalServerError")
        return self.inner.query(kql, start, end)
