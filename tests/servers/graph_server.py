"""A local Microsoft Graph v1.0 server over a DirectorySnapshot, for tests and benchmarks.

Plain HTTP on 127.0.0.1 (port 0), stdlib only, one thread per connection. It speaks the
endpoints the directory inventory and the email notifier use, in Graph's JSON shapes, strict
enough that msgraph-sdk parses its responses (GUIDs are GUIDs, binaries are base64):

    GET  /v1.0/applications[/{id}[/owners|/federatedIdentityCredentials]]
    GET  /v1.0/servicePrincipals[/{id}[/owners|/appRoleAssignments|/appRoleAssignedTo]]
    GET  /v1.0/directoryRoles[/{id}/members]
    GET  /v1.0/roleManagement/directory/roleAssignments   ($filter on roleDefinitionId or principalId required)
    GET  /v1.0/organization
    POST /v1.0/users/{id}/sendMail          (202; the JSON body is kept in `sent_mail`)

Like Graph it pages with `@odata.nextLink` (a `$skiptoken` cursor), honours `$top` (at most
999; 100 when `$expand` is used, as Graph caps expanded directory queries), `$select`
(an unknown property is a 400, as in Graph) and `$expand=rel` / `rel($select=...)` with at
most 20 expanded items and no paging inside them (Graph's documented limit). `page_size`
forces a smaller page so that tests can exercise paging with a handful of objects.

Test controls: `requests` (every request, injected failures included), `fail(status, times,
retry_after=..., path=...)` to answer the next matching requests with 429/503,
`latency` seconds added to every request, `delete_service_principal`/`delete_application`
(the object disappears from lists and 404s; `keep_assignments=True` leaves its app role
assignments visible from the resource side, as replication lag does), and `after_request`
hooks to mutate the tenant between pages.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from shared.directory.model import (
    Application,
    AppRoleAssignment,
    DirectorySnapshot,
    KeyCredential,
    Owner,
    PasswordCredential,
    RedirectUris,
    ServicePrincipal,
)

try:  # pytest puts tests/ on sys.path; scripts run from the repository root see the `tests` package
    from directory_fixtures import GRAPH_APP_ROLES, MICROSOFT_GRAPH_APP_ID
except ImportError:  # pragma: no cover - depends on how the caller was started
    from tests.directory_fixtures import GRAPH_APP_ROLES, MICROSOFT_GRAPH_APP_ID

MAX_PAGE_SIZE = 999
EXPAND_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 100
EXPAND_ITEM_CAP = 20

# Properties Graph v1.0 knows on each type (a subset: enough to reject a typo'd or beta-only $select).
APPLICATION_PROPERTIES = frozenset({
    "id", "appId", "displayName", "signInAudience", "createdDateTime", "passwordCredentials", "keyCredentials",
    "description", "publisherDomain", "tags", "identifierUris", "appRoles", "deletedDateTime", "notes",
    "requiredResourceAccess", "uniqueName", "disabledByMicrosoftStatus", "serviceManagementReference",
    "web", "spa", "publicClient", "servicePrincipalLockConfiguration",
})
SERVICE_PRINCIPAL_PROPERTIES = frozenset({
    "id", "appId", "displayName", "servicePrincipalType", "appOwnerOrganizationId", "accountEnabled",
    "alternativeNames", "passwordCredentials", "keyCredentials", "appRoles", "servicePrincipalNames", "tags",
    "appDisplayName", "description", "notes", "deletedDateTime", "signInAudience", "preferredSingleSignOnMode",
    "appRoleAssignmentRequired", "publisherName", "homepage", "replyUrls", "disabledByMicrosoftStatus",
})
DIRECTORY_ROLE_PROPERTIES = frozenset({"id", "displayName", "roleTemplateId", "description", "deletedDateTime"})
ROLE_ASSIGNMENT_PROPERTIES = frozenset({"id", "principalId", "roleDefinitionId", "directoryScopeId", "appScopeId"})
ROLE_ASSIGNMENT_FILTER = re.compile(r"(roleDefinitionId|principalId) (?:eq '([^']*)'|in \(([^)]*)\))")
APPLICATION_RELATIONS = frozenset({"owners", "federatedIdentityCredentials"})
SERVICE_PRINCIPAL_RELATIONS = frozenset({"owners", "appRoleAssignments", "appRoleAssignedTo"})


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # without the /v1.0 prefix
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    at: float  # time.monotonic() when the response was sent


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: str | None
    path: str | None


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def _password_json(credential: PasswordCredential) -> dict[str, Any]:
    return {"customKeyIdentifier": None, "displayName": credential.displayName,
            "endDateTime": _iso(credential.endDateTime), "hint": credential.hint, "keyId": credential.keyId,
            "secretText": None,
            "startDateTime": _iso(credential.startDateTime)}


def _key_json(credential: KeyCredential) -> dict[str, Any]:
    thumbprint = credential.customKeyIdentifier
    return {"customKeyIdentifier": base64.b64encode(bytes.fromhex(thumbprint)).decode() if thumbprint else None,
            "displayName": credential.displayName, "endDateTime": _iso(credential.endDateTime), "key": None,
            "keyId": credential.keyId, "startDateTime": _iso(credential.startDateTime), "type": credential.type,
            "usage": credential.usage}


def _redirect_uris(settings: RedirectUris | None) -> list[str]:
    return list(settings.redirectUris) if settings else []


def _owner_json(owner: Owner) -> dict[str, Any]:
    kind = owner.type if owner.type != "unknown" else "directoryObject"
    item: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": owner.id,
                            "displayName": owner.displayName}
    if owner.type == "user":
        item["userPrincipalName"] = owner.userPrincipalName
        item["mail"] = owner.mail
    return item


def _assignment_json(assignment: AppRoleAssignment, principal: ServicePrincipal) -> dict[str, Any]:
    return {"id": assignment.id, "appRoleId": assignment.appRoleId, "createdDateTime": _iso(assignment.createdDateTime),
            "deletedDateTime": None, "principalDisplayName": principal.displayName, "principalId": principal.id,
            "principalType": "ServicePrincipal", "resourceDisplayName": assignment.resourceDisplayName,
            "resourceId": assignment.resourceId}


def _app_role_json(role_id: str, value: str) -> dict[str, Any]:
    return {"allowedMemberTypes": ["Application"], "description": f"Allows the app to {value}.",
            "displayName": value, "id": role_id, "isEnabled": True, "origin": "Application", "value": value}


def _split_top_level(text: str) -> list[str]:
    """Split `a,b($select=x,y),c` at the commas outside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        depth += char == "("
        depth -= char == ")"
        current.append(char)
    if current:
        parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _parse_expand(text: str | None, allowed: frozenset[str], type_name: str) -> dict[str, list[str] | None]:
    expand: dict[str, list[str] | None] = {}
    for part in _split_top_level(text or ""):
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", part)
        if not match or match.group(1) not in allowed:
            raise GraphError(400, "Request_BadRequest",
                             f"Could not find a navigation property named '{part}' on type '{type_name}'.")
        nested = None
        if match.group(2):
            options = dict(option.split("=", 1) for option in match.group(2).split(";") if "=" in option)
            if "$select" in options:
                nested = [name.strip() for name in options["$select"].split(",") if name.strip()]
        expand[match.group(1)] = nested
    return expand


def _select(item: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    if select is None:
        return dict(item)
    return {key: value for key, value in item.items() if key in select or key in ("id", "@odata.type")}


class GraphServer:
    """Serve `snapshot` as Microsoft Graph v1.0. Use as a context manager, or start()/stop()."""

    def __init__(self, snapshot: DirectorySnapshot, *, page_size: int | None = None, latency: float = 0.0,
                 app_roles: dict[str, list[tuple[str, str]]] | None = None, expand_page_size: int = EXPAND_PAGE_SIZE,
                 expand_item_cap: int = EXPAND_ITEM_CAP,
                 authorize: Callable[[str | None], bool] | None = None) -> None:
        self.page_size = page_size
        self.latency = latency
        self.expand_page_size = expand_page_size
        self.expand_item_cap = expand_item_cap
        self.authorize = authorize  # given the Authorization header; False answers 401
        self.tenant_id = snapshot.tenantId
        self.requests: list[Request] = []
        self.sent_mail: list[tuple[str, dict[str, Any]]] = []
        self.after_request: list[Callable[[Request], None]] = []
        self._failures: list[_Failure] = []
        self._lock = threading.RLock()
        self._load(snapshot, app_roles)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- tenant state
    def _load(self, snapshot: DirectorySnapshot, app_roles: dict[str, list[tuple[str, str]]] | None) -> None:
        roles: dict[str, dict[str, str]] = {}
        for sp in snapshot.servicePrincipals:
            if sp.appId == MICROSOFT_GRAPH_APP_ID:
                roles.setdefault(sp.id, {}).update(GRAPH_APP_ROLES)
            for assignment in sp.appRoleAssignments:
                roles.setdefault(assignment.resourceId, {})[assignment.appRoleId] = assignment.permission
        for resource, pairs in (app_roles or {}).items():
            roles.setdefault(resource, {}).update(dict(pairs))

        self.applications: dict[str, dict[str, Any]] = {}
        self.application_owners: dict[str, list[dict[str, Any]]] = {}
        self.application_fics: dict[str, list[dict[str, Any]]] = {}
        self._application_order: list[str] = []
        for app in snapshot.applications:
            self._add_application(app)

        self.service_principals: dict[str, dict[str, Any]] = {}
        self.service_principal_owners: dict[str, list[dict[str, Any]]] = {}
        self.assignments_of: dict[str, list[dict[str, Any]]] = {}
        self.assigned_to: dict[str, list[dict[str, Any]]] = {}
        self._service_principal_order: list[str] = []
        for sp in snapshot.servicePrincipals:
            self.service_principals[sp.id] = {
                "id": sp.id, "appId": sp.appId, "displayName": sp.displayName,
                "servicePrincipalType": sp.servicePrincipalType, "appOwnerOrganizationId": sp.appOwnerOrganizationId,
                "accountEnabled": sp.accountEnabled, "alternativeNames": list(sp.alternativeNames),
                "servicePrincipalNames": [sp.appId], "tags": [],
                "passwordCredentials": [_password_json(c) for c in sp.passwordCredentials],
                "keyCredentials": [_key_json(c) for c in sp.keyCredentials],
                "appRoles": [_app_role_json(role_id, value) for role_id, value in sorted(roles.get(sp.id, {}).items())],
                "disabledByMicrosoftStatus": sp.disabledByMicrosoftStatus,
            }
            self._service_principal_order.append(sp.id)
            self.service_principal_owners[sp.id] = [_owner_json(owner) for owner in sp.owners]
            rows = [_assignment_json(assignment, sp) for assignment in sp.appRoleAssignments]
            self.assignments_of[sp.id] = rows
            for row in rows:
                self.assigned_to.setdefault(row["resourceId"], []).append(row)

        self.directory_roles: dict[str, dict[str, Any]] = {}
        self.role_members: dict[str, list[dict[str, Any]]] = {}
        for role in snapshot.directoryRoles:
            self.directory_roles[role.id] = {"id": role.id, "displayName": role.displayName,
                                             "roleTemplateId": role.roleTemplateId, "description": None}
            self.role_members[role.id] = [
                {"@odata.type": f"#microsoft.graph.{member.type if member.type != 'unknown' else 'directoryObject'}",
                 "id": member.id} for member in role.members
            ]

        self.role_assignments: list[dict[str, Any]] = [
            {"id": assignment.id, "principalId": assignment.principalId,
             "roleDefinitionId": assignment.roleDefinitionId, "directoryScopeId": assignment.directoryScopeId,
             "appScopeId": None,
             "principal": _owner_json(assignment.principal) if assignment.principal else
             {"@odata.type": "#microsoft.graph.directoryObject", "id": assignment.principalId}}
            for assignment in snapshot.roleAssignments]

    def _add_application(self, app: Application) -> None:
        self.applications[app.id] = {
            "id": app.id, "appId": app.appId, "displayName": app.displayName, "signInAudience": app.signInAudience,
            "createdDateTime": _iso(app.createdDateTime), "description": None, "tags": [], "identifierUris": [],
            "passwordCredentials": [_password_json(c) for c in app.passwordCredentials],
            "keyCredentials": [_key_json(c) for c in app.keyCredentials],
            "web": {"redirectUris": _redirect_uris(app.web), "homePageUrl": None, "logoutUrl": None,
                    "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": False}},
            "spa": {"redirectUris": _redirect_uris(app.spa)},
            "publicClient": {"redirectUris": _redirect_uris(app.publicClient)},
            "servicePrincipalLockConfiguration": (app.servicePrincipalLockConfiguration.model_dump()
                                                  if app.servicePrincipalLockConfiguration else None),
            "disabledByMicrosoftStatus": app.disabledByMicrosoftStatus,
        }
        self._application_order.append(app.id)
        self.application_owners[app.id] = [_owner_json(owner) for owner in app.owners]
        self.application_fics[app.id] = [
            {"id": fic.id, "name": fic.name, "issuer": fic.issuer, "subject": fic.subject or None,
             "audiences": list(fic.audiences), "description": None} for fic in app.federatedIdentityCredentials
        ]

    def delete_service_principal(self, sp_id: str, *, keep_assignments: bool = False) -> None:
        with self._lock:
            self.service_principals.pop(sp_id, None)
            self.service_principal_owners.pop(sp_id, None)
            ids = {row["id"] for row in self.assignments_of.pop(sp_id, [])}
            if not keep_assignments:
                for resource, rows in self.assigned_to.items():
                    self.assigned_to[resource] = [row for row in rows if row["id"] not in ids]

    def delete_application(self, app_id: str) -> None:
        with self._lock:
            self.applications.pop(app_id, None)
            self.application_owners.pop(app_id, None)
            self.application_fics.pop(app_id, None)

    def fail(self, status: int, times: int = 1, *, retry_after: str | int | None = None,
             path: str | None = None) -> None:
        """Answer the next `times` requests whose path contains `path` (any request if None) with `status`."""
        with self._lock:
            self._failures.append(_Failure(status, times, None if retry_after is None else str(retry_after), path))

    # ----------------------------------------------------------------- counting
    @property
    def request_count(self) -> int:
        return len(self.requests)

    def count(self, path_pattern: str = "", *, status: int | None = None) -> int:
        """Requests whose path matches the regular expression (searched), optionally with a status."""
        pattern = re.compile(path_pattern)
        return sum(1 for r in self.requests if pattern.search(r.path) and (status is None or r.status == status))

    def reset_counts(self) -> None:
        with self._lock:
            self.requests.clear()

    # ----------------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        """The Graph base URL, like https://graph.microsoft.com/v1.0."""
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1.0"

    @property
    def endpoint(self) -> str:
        """The endpoint without the version, like https://graph.microsoft.com (GRAPH_ENDPOINT)."""
        return self.url.removesuffix("/v1.0")

    def start(self) -> GraphServer:
        server = self

        class Handler(_Handler):
            graph = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="graph-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> GraphServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----------------------------------------------------------------- request handling
    def _take_failure(self, path: str) -> _Failure | None:
        with self._lock:
            for failure in self._failures:
                if failure.remaining > 0 and (failure.path is None or failure.path in path):
                    failure.remaining -= 1
                    return failure
        return None

    def _page_size(self, query: dict[str, str], *, expanded: bool) -> int:
        try:
            top = int(query.get("$top", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise GraphError(400, "Request_BadRequest", f"Invalid $top value '{query['$top']}'.") from None
        if not 1 <= top <= MAX_PAGE_SIZE:
            raise GraphError(400, "Request_BadRequest",
                             f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive.")
        size = min(top, self.expand_page_size) if expanded else top
        return size if self.page_size is None else min(size, self.page_size)

    def _body(self, path: str, query: dict[str, str], rows: list[dict[str, Any]], next_position: int | None,
              ) -> dict[str, Any]:
        body: dict[str, Any] = {"@odata.context": f"{self.url}/$metadata#{path.strip('/')}", "value": rows}
        if next_position is not None:
            rest = {key: value for key, value in query.items() if key != "$skiptoken"}
            rest["$skiptoken"] = str(next_position)
            body["@odata.nextLink"] = f"{self.url}{path}?{urlencode(rest, safe='$(),=;')}"
        return body

    def _page(self, path: str, query: dict[str, str], rows: list[dict[str, Any]]) -> dict[str, Any]:
        size = self._page_size(query, expanded=False)
        start = int(query.get("$skiptoken", "0"))
        return self._body(path, query, rows[start:start + size], start + size if start + size < len(rows) else None)

    def _collection(self, path: str, query: dict[str, str], order: list[str], objects: dict[str, dict[str, Any]],
                    properties: frozenset[str], relations: dict[str, Callable[[str], list[dict[str, Any]]]],
                    allowed_relations: frozenset[str], type_name: str) -> dict[str, Any]:
        select = self._parse_select(query, properties, type_name)
        expand = _parse_expand(query.get("$expand"), allowed_relations, type_name)
        size = self._page_size(query, expanded=bool(expand))
        # The cursor is a position in the creation order: an object deleted between pages leaves a
        # gap (a short page, as Graph sometimes returns) and moves nothing else.
        start = int(query.get("$skiptoken", "0"))
        rows: list[dict[str, Any]] = []
        with self._lock:
            for object_id in order[start:start + size]:
                item = objects.get(object_id)
                if item is None:
                    continue
                row = _select(item, select)
                for name, nested in expand.items():
                    row[name] = [_select(child, nested) for child in relations[name](object_id)[: self.expand_item_cap]]
                rows.append(row)
        return self._body(path, query, rows, start + size if start + size < len(order) else None)

    def _role_assignments(self, path: str, query: dict[str, str]) -> dict[str, Any]:
        """Graph answers this list only with a filter on roleDefinitionId or principalId (eq or in)."""
        match = ROLE_ASSIGNMENT_FILTER.fullmatch(query.get("$filter", "").strip())
        if match is None:
            raise GraphError(400, "Request_UnsupportedQuery",
                             "Filter on roleDefinitionId or principalId (eq or in) is required.")
        field, one, many = match.groups()
        wanted = {one} if one is not None else {value.strip().strip("'") for value in many.split(",")}
        select = self._parse_select(query, ROLE_ASSIGNMENT_PROPERTIES, "microsoft.graph.unifiedRoleAssignment")
        expand = _parse_expand(query.get("$expand"), frozenset({"principal"}), "microsoft.graph.unifiedRoleAssignment")
        rows = []
        with self._lock:
            for assignment in self.role_assignments:
                if assignment[field] not in wanted:
                    continue
                row = _select({k: v for k, v in assignment.items() if k != "principal"}, select)
                if "principal" in expand:
                    row["principal"] = _select(assignment["principal"], expand["principal"])
                rows.append(row)
        return self._page(path, query, rows)

    @staticmethod
    def _parse_select(query: dict[str, str], properties: frozenset[str], type_name: str) -> list[str] | None:
        if "$select" not in query:
            return None
        select = [name.strip() for name in query["$select"].split(",") if name.strip()]
        for name in select:
            if name not in properties:
                raise GraphError(400, "Request_BadRequest",
                                 f"Could not find a property named '{name}' on type '{type_name}'.")
        return select

    def _not_found(self, object_id: str) -> GraphError:
        return GraphError(404, "Request_ResourceNotFound",
                          f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
                          "are not present.")

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, dict[str, Any] | None]:
        parts = [unquote(part) for part in path.split("/") if part]
        if method == "POST":
            if len(parts) == 3 and parts[0] == "users" and parts[2] == "sendMail":
                try:
                    message = json.loads(body or b"{}")
                except json.JSONDecodeError:
                    raise GraphError(400, "ErrorInvalidRequest", "The request body is not JSON.") from None
                if not any(key.lower() == "message" for key in message):
                    raise GraphError(400, "ErrorInvalidRequest", "Missing property 'message'.")
                with self._lock:
                    self.sent_mail.append((parts[1], message))
                return 202, None
            raise GraphError(405, "Request_BadRequest", f"{method} is not supported on {path}")
        if method != "GET":
            raise GraphError(405, "Request_BadRequest", f"{method} is not supported on {path}")

        if parts == ["organization"]:
            return 200, {"value": [{"id": self.tenant_id, "displayName": "Contoso"}]}
        if parts == ["applications"]:
            return 200, self._collection(path, query, self._application_order, self.applications,
                                         APPLICATION_PROPERTIES, {
                                             "owners": lambda i: self.application_owners.get(i, []),
                                             "federatedIdentityCredentials": lambda i: self.application_fics.get(i, []),
                                         }, APPLICATION_RELATIONS, "microsoft.graph.application")
        if parts == ["servicePrincipals"]:
            return 200, self._collection(path, query, self._service_principal_order, self.service_principals,
                                         SERVICE_PRINCIPAL_PROPERTIES, {
                                             "owners": lambda i: self.service_principal_owners.get(i, []),
                                             "appRoleAssignments": lambda i: self.assignments_of.get(i, []),
                                             "appRoleAssignedTo": lambda i: self.assigned_to.get(i, []),
                                         }, SERVICE_PRINCIPAL_RELATIONS, "microsoft.graph.servicePrincipal")
        if parts == ["directoryRoles"]:
            # Graph lists the activated roles in one response; $top is not supported here.
            expand = _parse_expand(query.get("$expand"), frozenset({"members"}), "microsoft.graph.directoryRole")
            select = self._parse_select(query, DIRECTORY_ROLE_PROPERTIES, "microsoft.graph.directoryRole")
            with self._lock:
                rows = []
                for role_id, role in self.directory_roles.items():
                    row = _select(role, select)
                    if "members" in expand:
                        row["members"] = [_select(m, expand["members"])
                                          for m in self.role_members[role_id][: self.expand_item_cap]]
                    rows.append(row)
            return 200, {"@odata.context": f"{self.url}/$metadata#directoryRoles", "value": rows}

        if parts == ["roleManagement", "directory", "roleAssignments"]:
            return 200, self._role_assignments(path, query)

        if len(parts) >= 2 and parts[0] in ("applications", "servicePrincipals", "directoryRoles"):
            collection, object_id, relation = parts[0], parts[1], "/".join(parts[2:])
            with self._lock:
                if collection == "applications":
                    item, properties = self.applications.get(object_id), APPLICATION_PROPERTIES
                    relations = {"owners": self.application_owners,
                                 "federatedIdentityCredentials": self.application_fics}
                elif collection == "servicePrincipals":
                    item, properties = self.service_principals.get(object_id), SERVICE_PRINCIPAL_PROPERTIES
                    relations = {"owners": self.service_principal_owners, "appRoleAssignments": self.assignments_of,
                                 "appRoleAssignedTo": self.assigned_to}
                else:
                    item, properties = self.directory_roles.get(object_id), DIRECTORY_ROLE_PROPERTIES
                    relations = {"members": self.role_members}
                if item is None:
                    raise self._not_found(object_id)
                if not relation:
                    return 200, _select(item, self._parse_select(query, properties, f"microsoft.graph.{collection}"))
                if relation not in relations:
                    raise GraphError(400, "Request_BadRequest", f"Unsupported segment '{relation}'.")
                select = [n for n in query["$select"].split(",") if n] if "$select" in query else None
                children = [_select(child, select) for child in relations[relation].get(object_id, [])]
            return 200, self._page(path, query, children)
        raise GraphError(400, "Request_BadRequest", f"Resource not found for the segment '{path}'.")


class _Handler(BaseHTTPRequestHandler):
    graph: GraphServer
    protocol_version = "HTTP/1.1"
    timeout = 60
    # One write per response and no Nagle: otherwise headers and body go out as two small segments
    # and the client's delayed ACK adds ~40 ms to every request.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _respond(self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json;odata.metadata=minimal;charset=utf-8")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _serve(self, method: str) -> None:
        graph = self.graph
        split = urlsplit(self.path)
        path = split.path.removeprefix("/v1.0") or "/"
        query = {key: values[-1] for key, values in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if graph.latency:
            time.sleep(graph.latency)
        headers: dict[str, str] = {}
        failure = graph._take_failure(path)
        if failure is not None:
            status = failure.status
            payload: dict[str, Any] | None = {"error": {
                "code": "TooManyRequests" if status == 429 else "ServiceUnavailable",
                "message": "Too many requests" if status == 429 else "Service unavailable"}}
            if failure.retry_after is not None:
                headers["Retry-After"] = failure.retry_after
        elif graph.authorize is not None and not graph.authorize(self.headers.get("Authorization")):
            status, payload = 401, {"error": {"code": "InvalidAuthenticationToken",
                                              "message": "Access token is empty or invalid."}}
        else:
            try:
                status, payload = graph.handle(method, path, query, body)
            except GraphError as error:
                status, payload = error.status, {"error": {"code": error.code, "message": error.message}}
        request = Request(method, path, query, status, {k.lower(): v for k, v in self.headers.items()},
                          time.monotonic())
        with graph._lock:
            graph.requests.append(request)
        self._respond(status, payload, headers)
        for hook in list(graph.after_request):
            hook(request)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")
