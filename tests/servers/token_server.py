"""A managed-identity token endpoint in the App Service / Azure Functions style.

`azure.identity.ManagedIdentityCredential` (through MSAL) uses it when `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` are
set: GET `IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...[&client_id=...]` with the header
`X-IDENTITY-HEADER: <IDENTITY_HEADER>`, answered by `{"access_token", "expires_on", "resource", "token_type"}`
(`expires_on` in epoch seconds). Set `environ` in the process environment for as long as tokens are requested
(MSAL reads it at each request), e.g. with pytest's `monkeypatch.setenv`.

Every token it issues is remembered with its resource and client id, so a resource server can check a bearer
token with `is_valid(token)` / `resource_of(token)`.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from ._http import LocalServer, QuietHandler

API_VERSION = "2019-08-01"
PATH = "/msi/token"


@dataclass(frozen=True)
class TokenRequest:
    resource: str
    client_id: str | None
    api_version: str | None
    identity_header: str | None


@dataclass(frozen=True)
class IssuedToken:
    token: str
    resource: str
    client_id: str | None
    expires_on: int


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        owner: ManagedIdentityTokenServer = self.server.owner  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        params = {key: values[-1] for key, values in parse_qs(url.query).items()}
        request = TokenRequest(params.get("resource", ""), params.get("client_id"), params.get("api-version"),
                               self.headers.get("X-IDENTITY-HEADER"))
        with owner.lock:
            owner.requests.append(request)
        if url.path != PATH:
            self.send_json(404, {"statusCode": 404, "message": f"no such path {url.path}"})
        elif request.identity_header != owner.secret:
            self.send_json(401, {"statusCode": 401, "message": "X-IDENTITY-HEADER is missing or wrong"})
        elif request.api_version != API_VERSION:
            self.send_json(400, {"statusCode": 400, "message": f"api-version must be {API_VERSION}"})
        elif not request.resource:
            self.send_json(400, {"statusCode": 400, "message": "resource is required"})
        elif owner.client_id is not None and request.client_id not in (None, owner.client_id):
            self.send_json(400, {"statusCode": 400, "message": f"no identity with client_id {request.client_id}"})
        else:
            issued = owner.issue(request.resource, request.client_id)
            self.send_json(200, {"access_token": issued.token, "expires_on": str(issued.expires_on),
                                 "resource": issued.resource, "token_type": "Bearer",
                                 "client_id": issued.client_id or owner.client_id or ""})


class ManagedIdentityTokenServer(LocalServer):
    """Issues opaque bearer tokens to callers that present the identity header.

    `client_id`: when given, only that user-assigned identity (or the default, no client_id) is known.
    """

    handler = _Handler

    def __init__(self, *, client_id: str | None = None, lifetime_seconds: int = 3600) -> None:
        super().__init__()
        self.secret = secrets.token_hex(16)
        self.client_id = client_id
        self.lifetime_seconds = lifetime_seconds
        self.lock = threading.Lock()
        self.requests: list[TokenRequest] = []
        self.issued: dict[str, IssuedToken] = {}

    @property
    def environ(self) -> dict[str, str]:
        """The variables that point ManagedIdentityCredential here."""
        return {"IDENTITY_ENDPOINT": self.url + PATH, "IDENTITY_HEADER": self.secret}

    def issue(self, resource: str, client_id: str | None) -> IssuedToken:
        token = IssuedToken(f"mi-{secrets.token_urlsafe(24)}", resource, client_id,
                            int(time.time()) + self.lifetime_seconds)
        with self.lock:
            self.issued[token.token] = token
        return token

    def is_valid(self, token: str) -> bool:
        issued = self.issued.get(token)
        return issued is not None and issued.expires_on > time.time()

    def resource_of(self, token: str) -> str | None:
        issued = self.issued.get(token)
        return issued.resource if issued else None
