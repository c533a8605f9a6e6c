"""A local Kusto REST endpoint: duckdb-kql's own `duckdb-kql serve` process over a DuckDB file, and a proxy in front
of it that records requests and answers the faults a cluster can give.

`KustoServe(file)` runs `python -m duckdb_kql serve FILE --port P` (the real CLI, v1 management + v2 query frames)
and waits until it answers. `KustoFaultProxy(upstream)` forwards every request to it unchanged; `fail_next(kind)`
makes the next answers:
- `"partial"`: what a cluster sends when it cuts a result: HTTP 200, the first row of the primary result only, an
  error row (Level 2, E_QUERY_RESULT_SET_TOO_LARGE) in QueryCompletionInformation and `HasErrors` on completion;
- `429`: throttled, with Kusto's error body;
- `500`, `503`: the service's error body with that status.
Every request is recorded in `requests` (path, headers, parsed body).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._http import LocalServer, QuietHandler

START_TIMEOUT = 120.0  # seconds; the engine loads its parser on a busy machine


class KustoServe:
    """`duckdb-kql serve` over one database file, on a free loopback port."""

    def __init__(self, database_file: Path) -> None:
        self.database_file = database_file
        self.process: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def database(self) -> str:
        return self.database_file.stem

    def start(self) -> KustoServe:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "duckdb_kql", "serve", str(self.database_file), "--port", str(self.port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"duckdb-kql serve exited: {self.process.stdout.read()}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(self.url, timeout=5):
                    return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"duckdb-kql serve did not answer on {self.url} within {START_TIMEOUT:g} s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            if self.process.stdout is not None:
                self.process.stdout.close()
            self.process = None

    def __enter__(self) -> KustoServe:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: Any


class KustoFaultProxy(LocalServer):
    def __init__(self, upstream: str) -> None:
        super().__init__()
        self.upstream = upstream
        self.requests: list[RecordedRequest] = []
        self._faults: deque[str | int] = deque()
        self.lock = threading.Lock()

    def fail_next(self, kind: str | int, times: int = 1) -> None:
        if kind not in ("partial", 429, 500, 503):
            raise ValueError(f"unknown fault {kind!r}")
        with self.lock:
            self._faults.extend([kind] * times)

    def reset(self) -> None:
        with self.lock:
            self._faults.clear()
            self.requests.clear()

    def next_fault(self) -> str | int | None:
        with self.lock:
            return self._faults.popleft() if self._faults else None


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "@type": "Kusto.DataNode.Exceptions." + code,
                      "@message": message, "@permanent": False}}


def _cut(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The frames of a result the cluster cut at its result set limit."""
    for frame in frames:
        if frame.get("TableKind") == "PrimaryResult":
            frame["Rows"] = frame["Rows"][:1]
        elif frame.get("TableKind") == "QueryCompletionInformation":
            row = list(frame["Rows"][0])
            message = "Query result set has exceeded the internal record count limit 500000 " \
                      "(E_QUERY_RESULT_SET_TOO_LARGE)"
            row[5:12] = [2, "Error", -2133196797, "LimitsExceeded (0x80DA0003)", 4, "QueryResourceConsumption",
                         json.dumps({"error": {"code": "LimitsExceeded", "message": message}})]
            frame["Rows"].append(row)
        elif frame.get("FrameType") == "DataSetCompletion":
            frame["HasErrors"] = True
    return frames


class ProxyHandler(QuietHandler):
    def do_GET(self) -> None:
        self._forward(None)

    def do_POST(self) -> None:
        self._forward(self.read_body())

    def _forward(self, raw: bytes | None) -> None:
        owner: KustoFaultProxy = self.server.owner  # type: ignore[attr-defined]
        body = json.loads(raw) if raw else None
        with owner.lock:
            owner.requests.append(RecordedRequest(self.path, dict(self.headers), body))
        fault = owner.next_fault() if raw is not None else None
        if fault == 429:
            self.send_json(429, _error("ThrottlingException", "The request was throttled"), {"Retry-After": "1"})
            return
        if isinstance(fault, int):
            self.send_json(fault, _error("InternalServiceError", f"service error {fault}"))
            return
        request = urllib.request.Request(owner.upstream + self.path, data=raw, method=self.command,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:
                status, document = answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as error:
            status, document = error.code, json.loads(error.read() or b"null")
        if fault == "partial" and status == 200 and isinstance(document, list):
            document = _cut(document)
        self.send_json(status, document)


KustoFaultProxy.handler = ProxyHandler
