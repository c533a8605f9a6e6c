"""The Azure Monitor Logs Ingestion API, as `azure-monitor-ingestion` speaks it.

`POST /dataCollectionRules/{immutable id}/streams/{stream}?api-version=2023-01-01` with a bearer token and a JSON
array body (gzip'd when `Content-Encoding: gzip`); 204 when accepted, the rows then kept in `rows` by stream.
Faults, queued with `fail_next(kind, times)`:
- `429`: throttled, with `Retry-After` (seconds);
- `413`: the payload is too large;
- `500`: a server error, the rows not kept;
- `"lost"`: the rows are kept but the answer is a 500, as when the service took a chunk and its answer was lost.
Every request is recorded in `requests` (path, query, headers, rows).
"""

from __future__ import annotations

import gzip
import json
import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import LocalServer, QuietHandler

API_VERSION = "2023-01-01"
_PATH = re.compile(r"^/dataCollectionRules/([^/]+)/streams/([^/]+)$")


@dataclass(frozen=True)
class IngestionRequest:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    rows: Any


class IngestionServer(LocalServer):
    def __init__(self, rule_id: str, *, token_validator: Any = None) -> None:
        super().__init__()
        self.rule_id = rule_id
        self.token_validator = token_validator
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.requests: list[IngestionRequest] = []
        self._faults: deque[str | int] = deque()
        self.lock = threading.Lock()

    def fail_next(self, kind: str | int, times: int = 1) -> None:
        if kind not in (429, 413, 500, "lost"):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self._faults.extend([kind] * times)

    def next_fault(self) -> str | int | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class IngestionHandler(QuietHandler):
    def do_POST(self) -> None:
        owner: IngestionServer = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        raw = self.read_body()
        if self.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        try:
            rows = json.loads(raw or b"null")
        except ValueError:
            rows = None
        with owner.lock:
            owner.requests.append(IngestionRequest(parts.path, parse_qs(parts.query), dict(self.headers), rows))
        match = _PATH.match(parts.path)
        if not match or match.group(1) != owner.rule_id:
            self.send_json(404, _error("NotFound", f"no data collection rule at {parts.path}"))
            return
        if parse_qs(parts.query).get("api-version") != [API_VERSION]:
            self.send_json(400, _error("InvalidApiVersion", f"api-version must be {API_VERSION}"))
            return
        token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        if not token or (owner.token_validator is not None and not owner.token_validator(token)):
            self.send_json(401, _error("InvalidToken", "a valid bearer token is required"))
            return
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            self.send_json(400, _error("InvalidPayload", "the body must be a JSON array of objects"))
            return
        fault = owner.next_fault()
        if fault == 429:
            self.send_json(429, _error("TooManyRequests", "throttled"), {"Retry-After": "1"})
            return
        if fault == 413:
            self.send_json(413, _error("ContentLengthLimitExceeded", "the payload is larger than 1 MB"))
            return
        if fault in (500, "lost"):
            if fault == "lost":
                with owner.lock:
                    owner.rows[match.group(2)].extend(rows)
            self.send_json(500, _error("ServiceError", "internal error"))
            return
        with owner.lock:
            owner.rows[match.group(2)].extend(rows)
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


IngestionServer.handler = IngestionHandler
