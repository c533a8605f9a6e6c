"""A local Teams Workflows webhook: POST /workflows/{id}/triggers/manual/paths/invoke?...&sig=... -> 202 Accepted.

`url` is a signed-looking webhook URL (a random `sig`), so tests can check it never leaks. Every POST is
kept in `received` (path, query, headers, body bytes, monotonic time). `fail(status, times, retry_after=...,
body=...)` answers the next `times` requests with `status` instead; a request whose `sig` is wrong is a 401,
as Workflows answers. `answer_late()` makes it a slow webhook: every POST is taken (kept, and would be posted
to the channel) but answered only after `release()`, so a client gives up waiting on a post that went through.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import LocalServer, QuietHandler

LATE_ANSWER_LIMIT = 120  # seconds a held answer waits for release() at most, so no handler thread lingers


@dataclass(frozen=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: str | None
    body: str


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: WebhookServer = self.server.owner  # type: ignore[attr-defined]
        split = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(split.query).items()}
        body = self.read_body()
        with owner.lock:
            owner.received.append(Received(split.path, query, {k.lower(): v for k, v in self.headers.items()},
                                           body, time.monotonic()))
            failure = next((f for f in owner.failures if f.remaining > 0), None)
            if failure is not None:
                failure.remaining -= 1
        if split.path != owner.path:
            self.send_json(404, {"error": {"code": "TriggerNotFound", "message": "no such workflow"}})
        elif query.get("sig") != owner.signature:
            self.send_json(401, {"error": {"code": "DirectApiAuthorizationRequired",
                                           "message": f"The request signature {query.get('sig')} is not valid."}})
        elif failure is not None:
            headers = {"Retry-After": failure.retry_after} if failure.retry_after is not None else None
            # Echo the signed URL back, as some gateways do, so tests see that the notifier redacts it.
            self.send_json(failure.status, {"error": {"code": "Failure", "message": failure.body,
                                                      "target": f"{owner.url}{self.path}"}}, headers)
        else:
            owner.answering.wait(LATE_ANSWER_LIMIT)
            self.send_response(202)
            self.send_header("Content-Length", "0")
            self.end_headers()


class WebhookServer(LocalServer):
    handler = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.failures: list[_Failure] = []
        self.signature = secrets.token_urlsafe(32)
        self.path = f"/workflows/{secrets.token_hex(16)}/triggers/manual/paths/invoke"
        self.answering = threading.Event()
        self.answering.set()

    def answer_late(self) -> None:
        """Take every POST but hold its 202 until release()."""
        self.answering.clear()

    def release(self) -> None:
        self.answering.set()

    @property
    def webhook_url(self) -> str:
        return (f"{self.url}{self.path}?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0"
                f"&sig={self.signature}")

    def fail(self, status: int, times: int = 1, *, retry_after: str | int | None = None,
             body: str = "upstream failure") -> None:
        with self.lock:
            self.failures.append(_Failure(status, times, None if retry_after is None else str(retry_after), body))
