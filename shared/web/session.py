"""Who is looking at the web pages, and that a form was posted by them, from this site.

Two ways to be signed in, the same as the API's two modes (shared/api/app.py):

- Served on its own (`wiaudit serve`, an API key): a person signs in with the key and their name on the login
  form. The browser then holds a session cookie (HttpOnly, SameSite=Strict, Path=/api/ui, Secure over https)
  carrying the name and an expiry, signed with an HMAC keyed by the API key: the key itself never sits in the
  browser, and a new key ends every session. The name is recorded as `by` on triage.
- Behind the Functions host in Azure: App Service authentication (Entra sign-in) in front of the app; the
  platform's headers name the person (shared/api/identity.py). Without it the pages refuse to serve, since the
  host lets browser requests through without the function key.

Wrong keys are counted per client address: after FAILED_SIGN_INS within SIGN_IN_LOCKOUT_SECONDS that address is
refused without the key being checked, until the oldest of those attempts is that long ago.

Every form carries a CSRF token that must equal the HttpOnly, SameSite=Strict cookie the page set (double
submit: another site can neither read nor set it), and a POST whose Origin is another site's is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from shared.api.identity import PRINCIPAL_HEADER, PRINCIPAL_NAME_HEADER, TRIAGE_ROLE, roles
from shared.web.paths import PREFIX

SESSION_COOKIE = "wiaudit_session"
CSRF_COOKIE = "wiaudit_csrf"
CSRF_FIELD = "csrf"
SESSION_SECONDS = 12 * 3600
MAX_NAME = 256
FAILED_SIGN_INS = 5
SIGN_IN_LOCKOUT_SECONDS = 300
TRACKED_ADDRESSES = 4096


@dataclass(frozen=True)
class Viewer:
    """The person signed in: `name` is what triage records; `entra` tells how they signed in."""

    name: str
    entra: bool = False


class NotSignedIn(Exception):
    """No (valid) sign-in: the page sends the person to sign in. `reason` says why, for the login page."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(reason)
        self.reason = reason


class Forbidden(Exception):
    """Signed in, but not allowed: the message says what is missing."""


class SignInAttempts:
    """Recent wrong keys per client address, so the login form cannot be used to guess the key."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._failures: dict[str, deque[float]] = {}

    def seconds_to_wait(self, address: str) -> int:
        """0 when the address may try a key now, else the whole seconds until it may."""
        failures = self._recent(address)
        if len(failures) < FAILED_SIGN_INS:
            return 0
        return max(1, int(failures[0] + SIGN_IN_LOCKOUT_SECONDS - self._now() + 0.999))

    def failed(self, address: str) -> None:
        if address not in self._failures and len(self._failures) >= TRACKED_ADDRESSES:
            self._forget_quiet_addresses()
        self._recent(address).append(self._now())

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def _recent(self, address: str) -> deque[float]:
        failures = self._failures.setdefault(address, deque(maxlen=FAILED_SIGN_INS))
        while failures and failures[0] <= self._now() - SIGN_IN_LOCKOUT_SECONDS:
            failures.popleft()
        return failures

    def _forget_quiet_addresses(self) -> None:
        for address in list(self._failures):
            if not self._recent(address):
                del self._failures[address]


class LocalSessions:
    """Sessions of a locally served app, signed with a key derived from its API key."""

    def __init__(self, api_key: str, *, now: Callable[[], float] = time.time) -> None:
        self._api_key = api_key.encode("utf-8")
        self._signing = hmac.new(self._api_key, b"wiaudit web session", hashlib.sha256).digest()
        self._now = now
        self.attempts = SignInAttempts(now)

    def key_matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode("utf-8"), self._api_key)

    def issue(self, name: str) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(
            {"by": name, "exp": int(self._now()) + SESSION_SECONDS}).encode("utf-8")).decode("ascii")
        return f"{payload}.{self._sign(payload)}"

    def viewer(self, cookie: str | None) -> Viewer:
        if not cookie or "." not in cookie:
            raise NotSignedIn()
        payload, signature = cookie.rsplit(".", 1)
        if not hmac.compare_digest(signature, self._sign(payload)):
            raise NotSignedIn("Your session is not valid any more (the server's key changed); sign in again.")
        try:
            content = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
        except (binascii.Error, ValueError, UnicodeError):
            raise NotSignedIn() from None
        if int(content.get("exp", 0)) <= self._now():
            raise NotSignedIn("Your session has ended; sign in again.")
        return Viewer(str(content["by"]))

    def _sign(self, payload: str) -> str:
        return hmac.new(self._signing, payload.encode("ascii"), hashlib.sha256).hexdigest()


def entra_viewer(headers: Mapping[str, str], *, easy_auth: bool) -> Viewer:
    """The person App Service authentication signed in; Forbidden without Entra sign-in or the triage role."""
    if not easy_auth:
        raise Forbidden("These pages need Entra sign-in (App Service authentication) on the Function app: "
                        "see docs/deploy.md, Entra sign-in for triage.")
    name = (headers.get(PRINCIPAL_NAME_HEADER) or "").strip()[:MAX_NAME]
    if not name:
        raise NotSignedIn()
    if TRIAGE_ROLE not in roles(headers.get(PRINCIPAL_HEADER)):
        raise Forbidden(f"{name} is signed in but does not hold the app role {TRIAGE_ROLE} these pages need; "
                        "ask an admin to assign it.")
    return Viewer(name, entra=True)


def csrf_token(request: Request) -> str:
    """The CSRF cookie's value, or a new token (set_csrf_cookie sends it with the response)."""
    return request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PREFIX, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")


def check_form(request: Request, form: Mapping[str, str]) -> None:
    """Forbidden unless the form came from this site: same Origin (when the browser sends one) and CSRF token."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("This form was sent from another site.")
    cookie, field = request.cookies.get(CSRF_COOKIE, ""), str(form.get(CSRF_FIELD, ""))
    if not cookie or not hmac.compare_digest(cookie.encode(), field.encode()):
        raise Forbidden("This form has expired or did not come from this site: reload the page and try again.")
