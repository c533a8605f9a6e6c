"""A local Azure Resource Graph server: the resources query protocol over an `authorizationresources` table.

    POST /providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01|2022-10-01|2024-04-01
    {"query", "subscriptions"?, "managementGroups"?, "options"?: {"$top", "$skip", "$skipToken", "resultFormat"}}
    -> {"totalRecords", "count", "data": [objects], "facets": [], "resultTruncated": "false", "$skipToken"?}

The query really runs: duckdb-kql evaluates the posted KQL over the rows in the requested scopes (a row's
`subscriptionId`; a management group stands for the subscriptions under it and its own assignments; rows
without one, such as built-in role definitions, are visible from every scope). Pages hold `$top` rows (at most
1,000, Resource Graph's cap) and the `$skipToken` is opaque. Errors come back in Resource Graph's shape
({"error": {"code", "message"}}): 400 for a bad api-version, body, `$top` or query, 401 for a missing or
unknown bearer token when `token_validator` is set. `requests` keeps every request's body.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ._http import LocalServer, QuietHandler

PATH = "/providers/Microsoft.ResourceGraph/resources"
API_VERSIONS = frozenset({"2021-03-01", "2022-10-01", "2024-04-01"})
MAX_TOP = 1000
COLUMNS = ("id", "name", "type", "tenantId", "subscriptionId", "resourceGroup", "properties")


@dataclass(frozen=True)
class GraphRequest:
    api_version: str | None
    body: dict[str, Any]
    authorization: str | None


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class _Handler(QuietHandler):
    def do_POST(self) -> None:
        owner: ResourceGraphServer = self.server.owner  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            body = json.loads(self.read_body() or b"{}")
        except json.JSONDecodeError:
            body = None
        request = GraphRequest(query.get("api-version"), body if isinstance(body, dict) else {},
                               self.headers.get("Authorization"))
        owner.requests.append(request)
        try:
            if parts.path.rstrip("/") != PATH:
                raise _Refusal(404, "NotFound", f"no route {parts.path}")
            if body is None or not isinstance(body, dict):
                raise _Refusal(400, "InvalidRequestContent", "the request body is not a JSON object")
            self.send_json(200, owner.answer(request))
        except _Refusal as refusal:
            self.send_json(refusal.status, {"error": {"code": refusal.code, "message": refusal.message}})


class ResourceGraphServer(LocalServer):
    handler = _Handler

    def __init__(self, resources: list[dict[str, Any]], management_groups: dict[str, list[str]] | None = None,
                 token_validator: Callable[[str], bool] | None = None) -> None:
        super().__init__()
        self.resources = resources
        self.management_groups = {name.lower(): [s.lower() for s in subs]
                                  for name, subs in (management_groups or {}).items()}
        self.token_validator = token_validator
        self.requests: list[GraphRequest] = []

    def answer(self, request: GraphRequest) -> dict[str, Any]:
        if request.api_version not in API_VERSIONS:
            raise _Refusal(400, "InvalidApiVersionParameter", f"api-version {request.api_version!r} is not "
                           f"supported; supported: {', '.join(sorted(API_VERSIONS))}")
        if self.token_validator is not None:
            scheme, _, token = (request.authorization or "").partition(" ")
            if scheme != "Bearer" or not self.token_validator(token):
                raise _Refusal(401, "AuthenticationFailed", "missing or invalid bearer token")
        body = request.body
        options = body.get("options") or {}
        top = int(options.get("$top") or 100)
        if not 1 <= top <= MAX_TOP:
            raise _Refusal(400, "BadRequest", f"$top must be between 1 and {MAX_TOP}")
        if (options.get("resultFormat") or "objectArray") != "objectArray":
            raise _Refusal(400, "BadRequest", "this server answers resultFormat objectArray only")
        if not isinstance(body.get("query"), str) or not body["query"].strip():
            raise _Refusal(400, "BadRequest", "query is required")
        rows = self._run(body["query"], self._visible(body.get("subscriptions"), body.get("managementGroups")))
        start = _offset(options.get("$skipToken")) if options.get("$skipToken") else int(options.get("$skip") or 0)
        page = rows[start:start + top]
        document: dict[str, Any] = {"totalRecords": len(rows), "count": len(page), "data": page, "facets": [],
                                    "resultTruncated": "false"}
        if start + top < len(rows):
            document["$skipToken"] = base64.b64encode(json.dumps({"offset": start + top}).encode()).decode()
        return document

    def _visible(self, subscriptions: list[str] | None, groups: list[str] | None) -> list[dict[str, Any]]:
        if not subscriptions and not groups:
            raise _Refusal(400, "BadRequest", "name the subscriptions or management groups to query")
        allowed = {s.lower() for s in subscriptions or []}
        for group in groups or []:
            if group.lower() not in self.management_groups:
                raise _Refusal(403, "AuthorizationFailed", f"no access to management group {group}")
            allowed |= {group.lower(), *self.management_groups[group.lower()]}
        return [row for row in self.resources if not row.get("subscriptionId") or
                str(row["subscriptionId"]).lower() in allowed]

    @staticmethod
    def _run(kql: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        import duckdb_kql

        con = duckdb_kql.connect()
        try:
            con.execute("CREATE TABLE authorizationresources (id VARCHAR, name VARCHAR, type VARCHAR, "
                        "tenantId VARCHAR, subscriptionId VARCHAR, resourceGroup VARCHAR, properties JSON)")
            con.executemany("INSERT INTO authorizationresources VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [[json.dumps(row.get(c) or {}) if c == "properties" else row.get(c, "")
                              for c in COLUMNS] for row in rows])
            try:
                relation = duckdb_kql.query(con, kql)
            except Exception as error:  # the query's fault, answered as Resource Graph does
                raise _Refusal(400, "InvalidQuery", f"Query is invalid: {error}") from error
            names = relation.columns
            return [dict(zip(names, values, strict=True)) for values in relation.fetchall()]
        finally:
            con.close()


def _offset(token: str) -> int:
    try:
        return int(json.loads(base64.b64decode(token))["offset"])
    except (ValueError, KeyError, TypeError) as error:
        raise _Refusal(400, "BadRequest", "$skipToken is not one this server issued") from error


def role_assignment(subscription: str, assignment: str, principal_id: str, role_id: str, scope: str,
                    principal_type: str = "ServicePrincipal") -> dict[str, Any]:
    """An authorizationresources row of a role assignment, as Resource Graph stores it."""
    return {"id": f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{assignment}",
            "name": assignment, "type": "microsoft.authorization/roleassignments", "subscriptionId": subscription,
            "properties": {"principalId": principal_id, "principalType": principal_type, "scope": scope,
                           "roleDefinitionId": f"/subscriptions/{subscription}/providers/Microsoft.Authorization/"
                                               f"roleDefinitions/{role_id}"}}


def role_definition(role_id: str, name: str) -> dict[str, Any]:
    """A built-in role definition row (no subscription: visible from every scope)."""
    return {"id": f"/providers/Microsoft.Authorization/RoleDefinitions/{role_id}", "name": role_id,
            "type": "microsoft.authorization/roledefinitions", "subscriptionId": "",
            "properties": {"roleName": name, "type": "BuiltInRole"}}
