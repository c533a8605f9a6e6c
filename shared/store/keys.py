"""Partition/row keys and the opaque, tamper-evident continuation tokens.

Keys never contain user text that Table Storage forbids (/ \\ # ? control characters) or
that is awkward in URLs (%, '): a value made of safe characters is kept readable
(`d~sp_signin_failures`), anything else becomes a hash (`p!3f2a...`). Every reader
re-checks the real value, so a hash collision cannot leak a row into a result.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

SAFE_KEY = re.compile(r"[A-Za-z0-9_.:@-]{1,200}")
_MAX_INV = 10**19 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class InvalidContinuation(ValueError):
    """The continuation token was not issued by this store for this query, or was altered."""


def utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def key_part(kind: str, value: str) -> str:
    """A partition/row key for `value` under `kind`: readable if safe, else a hash."""
    if SAFE_KEY.fullmatch(value):
        return f"{kind}~{value}"
    return f"{kind}!{hashlib.sha256(value.encode('utf-8', 'surrogatepass')).hexdigest()[:40]}"


def inverted_time(value: datetime) -> str:
    """19 digits that sort newest first: later times give smaller strings."""
    micros = (utc(value) - _EPOCH) // timedelta(microseconds=1)
    return f"{_MAX_INV - max(0, micros):019d}"


def newest_first_key(value: datetime, suffix: str) -> str:
    return f"{inverted_time(value)}_{suffix}"


def at_or_after(value: datetime) -> str:
    """Row keys of times >= value are < this bound (newest-first keys)."""
    return f"{inverted_time(value)}~"


def before(value: datetime) -> str:
    """Row keys of times < value are > this bound (newest-first keys)."""
    return f"{inverted_time(value)}~"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_digest(kind: str, **filters: Any) -> str:
    """A short digest of a query's filters: a token only continues the query it came from."""
    canonical = json.dumps([kind, filters], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def encode_continuation(secret: bytes, query: str, after: str) -> str:
    payload = _b64(json.dumps({"v": 1, "q": query, "after": after}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def decode_continuation(secret: bytes, query: str, token: str) -> str:
    """The position a token stands for; InvalidContinuation if forged, altered or from another query/store."""
    try:
        payload, signature = token.split(".")
        expected = _b64(hmac.new(secret, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(expected, signature):
            raise InvalidContinuation("continuation token is not valid for this store")
        data = json.loads(_unb64(payload))
    except InvalidContinuation:
        raise
    except (ValueError, TypeError, UnicodeError) as error:
        raise InvalidContinuation("continuation token is malformed") from error
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("after"), str):
        raise InvalidContinuation("continuation token is malformed")
    if data.get("q") != query:
        raise InvalidContinuation("continuation token belongs to a different query")
    return data["after"]
