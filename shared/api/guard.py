"""The API's front door, a pure ASGI middleware: it refuses before anything reads the request body.

1. The API key (local serving only): a request without the right `x-api-key` gets 401 at once, its body never
   read, whatever its size or content. Behind the Azure Functions host the host has checked the function key.
   The web pages (a browser sends no header) are let through to check their own sign-in cookie.
2. The body size: a declared `content-length` over the limit is 413 at once; a body streamed without one is read
   only up to the limit, then refused. A body within the limit is handed on whole, so FastAPI parses it as usual.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from shared.api.problems import problem

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_KEY_HEADER = "x-api-key"
MAX_BODY_BYTES = 64 * 1024


class RequestGuard:
    """`api_key` None: no key check (the Functions host checked the function key). `public_paths` need no key;
    nor do the paths under `browser_prefix`: the web pages check their own sign-in cookie (shared/web/session.py)."""

    def __init__(self, app: ASGIApp, *, api_key: str | None, public_paths: frozenset[str],
                 browser_prefix: str | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.expected = None if api_key is None else api_key.encode("utf-8")
        self.public_paths = public_paths
        self.browser_prefix = browser_prefix
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope.get("headers", ())}
        if not self._authorised(scope["path"], headers):
            await self._refuse(scope, send, problem(401, f"missing or wrong {API_KEY_HEADER} header",
                                                    headers={"WWW-Authenticate": "ApiKey"}))
            return
        declared = _content_length(headers)
        if declared is not None and declared > self.max_body_bytes:
            await self._refuse(scope, send, self._too_large())
            return
        try:
            body = await self._read_body(receive)
        except _ClientGone:
            return  # nobody left to answer
        if body is None:
            await self._refuse(scope, send, self._too_large())
            return
        await self.app(scope, _replay(body, receive), send)

    def _authorised(self, path: str, headers: dict[bytes, bytes]) -> bool:
        if self.expected is None or path in self.public_paths or self._browser_page(path):
            return True
        # Header bytes are compared as sent: no decoding, constant time.
        return hmac.compare_digest(headers.get(API_KEY_HEADER.encode(), b""), self.expected)

    def _browser_page(self, path: str) -> bool:
        prefix = self.browser_prefix
        return prefix is not None and (path == prefix or path.startswith(prefix + "/"))

    def _too_large(self) -> Any:
        return problem(413, f"the request body is larger than {self.max_body_bytes // 1024} KiB")

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit (the rest is never read)."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    @staticmethod
    async def _refuse(scope: Scope, send: Send, response: Any) -> None:
        """Answer without reading the body; the server then closes the connection rather than drain it."""
        async def nothing() -> Message:
            return {"type": "http.disconnect"}

        response.headers["Connection"] = "close"
        await response(scope, nothing, send)


class _ClientGone(Exception):
    pass


def _content_length(headers: dict[bytes, bytes]) -> int | None:
    value = headers.get(b"content-length")
    return int(value) if value is not None and value.strip().isdigit() else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body as one message, then whatever the server says next (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
