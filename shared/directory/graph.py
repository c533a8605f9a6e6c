"""The production Directory adapter: one bulk read of the tenant through Microsoft Graph (msgraph-sdk).

The inventory is a handful of paged list reads, so its request count grows with the size of the
tenant divided by the page size, never with the number of principals or findings:

    GET /applications?$select=...&$expand=owners($select=id,displayName,userPrincipalName)&$top=999
    GET /applications?$select=id&$expand=federatedIdentityCredentials&$top=999
    GET /servicePrincipals?$select=...,appRoles&$expand=owners($select=...)&$top=999
    GET /servicePrincipals/{resource}/appRoleAssignedTo?$top=999   per API that offers application permissions
    GET /directoryRoles?$select=...&$expand=members($select=id)
    GET /roleManagement/directory/roleAssignments?$filter=roleDefinitionId in (...)&$select=...&$expand=principal

Graph's own limits shape it (https://developer.microsoft.com/en-us/graph/known-issues/?search=13635):
a list with `$expand` comes in pages of at most 100 whatever `$top` says, and an expanded
relationship holds at most 20 items with no next link. So the two expansions of applications
are separate reads (one `$expand` each, the documented form), and the rare object whose
expanded owners, federated credentials or role members reach 20 is re-read on its own, paged.
App role assignments are read from the resource side: one paged read per API whose app roles
can be granted to applications (Microsoft Graph and the like), instead of one read per
principal; the resource's `appRoles` (selected in the service principal list) turn each
`appRoleId` into the permission's name.

Throttling: kiota's RetryHandler retries 429, 503 and 504, waiting what `Retry-After` says
(without a cap) or backing off exponentially when there is none; every request carries a
`RetryHandlerOption` with this adapter's `max_retries` and base delay, so an injected request
adapter behaves the same. An object deleted while the read runs (an owner or resource that
now 404s, an assignment whose principal is no longer listed) is skipped, not an error.

Requests are built by msgraph-sdk's request builders and sent through its request adapter and
middleware; the bodies are read as JSON straight into the snapshot model (Graph's own names), not
into the SDK's typed models, which cost ~7-13 ms of CPU per directory object in msgraph-sdk 1.65
(see `_Reader`) against ~0.2 ms for JSON. msgraph-sdk is imported inside the functions that use
it, so importing this module costs nothing until the first inventory.

Role assignments are read for the roles that can take over applications (the tier model's `appControl`
roles, by template id), tenant-wide and scoped to one application alike, with their assignee: users and groups
too, which the directory role members leave out. Graph wants a filter on this list.

Permissions (application): Application.Read.All for applications, service principals and app
role assignments; RoleManagement.Read.Directory (or Directory.Read.All) for directory roles and role
assignments.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.directory.model import (
    Application,
    AppRoleAssignment,
    DirectoryRole,
    DirectorySnapshot,
    FederatedIdentityCredential,
    KeyCredential,
    Owner,
    PasswordCredential,
    RedirectUris,
    RoleAssignment,
    RoleMember,
    ServicePrincipal,
)
from shared.directory.tiers.lookup import tier_model
from shared.settings import SettingsError, read_setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from kiota_abstractions.request_adapter import RequestAdapter

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://graph.microsoft.com"
MICROSOFT_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
PAGE_SIZE = 999
EXPAND_ITEM_CAP = 20  # Graph returns at most 20 items of an expanded directory relationship
DEFAULT_ACCESS_ROLE_ID = "00000000-0000-0000-0000-000000000000"

OWNER_FIELDS = ["id", "displayName", "userPrincipalName", "mail"]
OWNERS_EXPAND = f"owners($select={','.join(OWNER_FIELDS)})"
APPLICATION_FIELDS = ["id", "appId", "displayName", "signInAudience", "createdDateTime", "passwordCredentials",
                      "keyCredentials", "web", "spa", "publicClient", "servicePrincipalLockConfiguration",
                      "disabledByMicrosoftStatus"]
# servicePrincipal has no createdDateTime in v1.0 (beta only): selecting it would be a 400.
SERVICE_PRINCIPAL_FIELDS = ["id", "appId", "displayName", "servicePrincipalType", "appOwnerOrganizationId",
                            "accountEnabled", "alternativeNames", "passwordCredentials", "keyCredentials", "appRoles",
                            "disabledByMicrosoftStatus"]
ASSIGNMENT_FIELDS = ["id", "appRoleId", "createdDateTime", "principalId", "principalType", "resourceId",
                     "resourceDisplayName"]
ROLE_FIELDS = ["id", "displayName", "roleTemplateId"]
ROLE_ASSIGNMENT_FIELDS = ["id", "principalId", "roleDefinitionId", "directoryScopeId"]

_OWNER_TYPES = {"#microsoft.graph.user": "user", "#microsoft.graph.servicePrincipal": "servicePrincipal",
                "#microsoft.graph.group": "group"}


class GraphDirectoryError(RuntimeError):
    """Microsoft Graph refused or failed a read of the inventory; the message says which and why."""


class GraphDirectory:
    """The Directory port on Microsoft Graph.

    `credential`: an azure-identity TokenCredential (the Function's managed identity in Azure);
    tokens are requested for `{endpoint}/.default` and sent to the endpoint's host only.
    `request_adapter`: an msgraph `GraphRequestAdapter` to use instead (tests, custom
    transports). Without it, each inventory builds an adapter with an
    AzureIdentityAuthenticationProvider and closes it afterwards.
    `tenant_id`: the tenant's id for the snapshot; otherwise the `tid` claim of the access
    token, or `GET /organization` when the token is not a JWT.
    """

    def __init__(self, credential: TokenCredential | None, endpoint: str = DEFAULT_ENDPOINT,
                 request_adapter: RequestAdapter | None = None, *, tenant_id: str | None = None,
                 page_size: int = PAGE_SIZE, max_concurrency: int = 4, max_retries: int = 5,
                 retry_delay: float = 3.0, clock: Callable[[], datetime] | None = None) -> None:
        if credential is None and request_adapter is None:
            raise ValueError("GraphDirectory needs a credential or a request adapter")
        if not 1 <= page_size <= PAGE_SIZE:
            raise ValueError(f"page_size must be between 1 and {PAGE_SIZE}")
        self.credential = credential
        self.endpoint = endpoint.rstrip("/")
        self.request_adapter = request_adapter
        self.tenant_id = tenant_id
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.clock = clock or (lambda: datetime.now(UTC))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()

    @property
    def scope(self) -> str:
        return f"{self.endpoint}/.default"

    # ------------------------------------------------------------------ entry points
    def inventory(self) -> DirectorySnapshot:
        """One bulk read of the tenant (blocking; callable from sync code and from inside a running loop).

        It runs on this directory's own event loop in a background thread, so an injected request
        adapter (whose httpx client belongs to one loop) serves every call.
        """
        return asyncio.run_coroutine_threadsafe(self.inventory_async(), self._event_loop()).result()

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._loop_lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(target=self._loop.run_forever, name="graph-directory",
                                                     daemon=True)
                self._loop_thread.start()
            return self._loop

    def close(self) -> None:
        """Stop the background event loop. A later inventory starts a new one, which an injected
        request adapter cannot follow (its connections belong to the old loop): pass a fresh one."""
        with self._loop_lock:
            loop, thread, self._loop, self._loop_thread = self._loop, self._loop_thread, None, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def __enter__(self) -> GraphDirectory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def inventory_async(self) -> DirectorySnapshot:
        owned_adapter = self.request_adapter is None
        adapter = self._build_adapter() if owned_adapter else self.request_adapter
        try:
            return await _Reader(self, adapter).read()
        finally:
            if owned_adapter:
                client = getattr(adapter, "_http_client", None)
                if client is not None:
                    await client.aclose()

    def _build_adapter(self) -> RequestAdapter:
        from kiota_authentication_azure.azure_identity_authentication_provider import (
            AzureIdentityAuthenticationProvider,
        )
        from msgraph import GraphRequestAdapter

        host = urlsplit(self.endpoint).hostname or ""
        auth = AzureIdentityAuthenticationProvider(self.credential, scopes=[self.scope], allowed_hosts=[host])
        adapter = GraphRequestAdapter(auth)
        adapter.base_url = f"{self.endpoint}/v1.0"
        return adapter

    def _tenant_from_token(self) -> str | None:
        if self.credential is None:
            return None
        try:
            token = self.credential.get_token(self.scope).token
            payload = token.split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            return str(claims["tid"])
        except (IndexError, KeyError, ValueError, TypeError):
            return None  # not a JWT (e.g. a local test token): ask Graph instead


def graph_directory_from_settings(credential: TokenCredential, environ: Mapping[str, str] | None = None,
                                  ) -> GraphDirectory:
    """The Graph directory at the GRAPH_ENDPOINT setting (https; plain http only for a local server)."""
    endpoint = str(read_setting("GRAPH_ENDPOINT", environ)).rstrip("/")
    parts = urlsplit(endpoint)
    local = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("https", "http") or not parts.hostname or (parts.scheme == "http" and not local):
        raise SettingsError(f"setting GRAPH_ENDPOINT: must be an https URL such as {DEFAULT_ENDPOINT} "
                            f"(got {endpoint!r})")
    if parts.path not in ("", "/"):
        raise SettingsError(f"setting GRAPH_ENDPOINT: give the endpoint without a version or path, "
                            f"e.g. {DEFAULT_ENDPOINT} (got {endpoint!r})")
    return GraphDirectory(credential, endpoint)


class _Reader:
    """One inventory run: the SDK's request builders and HTTP pipeline, a retry option, bounded concurrency.

    Requests are built by msgraph-sdk's request builders and sent through its request adapter
    (authentication, retry, redirect, telemetry middleware); response bodies are read as JSON
    into the snapshot model, whose field names are Graph's own. The SDK's typed models are
    skipped on purpose: msgraph-sdk 1.65 spends ~8 ms of CPU per directory object in
    `Entity.get_field_deserializers` (thousands of function-level imports per call,
    microsoftgraph/msgraph-sdk-python#584), which would make a 20,000-principal tenant take
    minutes of parsing alone.
    """

    def __init__(self, directory: GraphDirectory, adapter: RequestAdapter) -> None:
        from kiota_http.middleware.options import RetryHandlerOption
        from msgraph import GraphServiceClient
        from msgraph.generated.models.o_data_errors.o_data_error import ODataError

        self.directory = directory
        self.adapter = adapter
        self.client = GraphServiceClient(request_adapter=adapter)
        self.retry = RetryHandlerOption(delay=directory.retry_delay, max_retries=directory.max_retries)
        self.errors = {"XXX": ODataError.create_from_discriminator_value}
        self.limit = asyncio.Semaphore(directory.max_concurrency)
        self.top = directory.page_size

    def config(self, builder: Any, **query: Any) -> Any:
        from kiota_abstractions.base_request_configuration import RequestConfiguration

        parameters = getattr(builder, type(builder).__name__ + "GetQueryParameters")(**query) if query else None
        return RequestConfiguration(query_parameters=parameters, options=[self.retry])

    async def get_json(self, builder: Any, what: str, **query: Any) -> dict[str, Any]:
        """One GET through the SDK's pipeline, its JSON body as a dict."""
        return await self._send(builder.to_get_request_information(self.config(builder, **query)), what)

    async def pages(self, builder: Any, what: str, **query: Any) -> AsyncIterator[dict[str, Any]]:
        """The items of every page of a list, following @odata.nextLink."""
        info = builder.to_get_request_information(self.config(builder, **query))
        while True:
            document = await self._send(info, what)
            for item in document.get("value") or []:
                yield item
            next_link = document.get("@odata.nextLink")
            if not next_link:
                return
            info = builder.with_url(next_link).to_get_request_information(self.config(builder))

    async def collect(self, builder: Any, what: str, *, missing_ok: bool = False,
                      **query: Any) -> list[dict[str, Any]] | None:
        """Every item of a paged list; None when the object behind it is gone (404) and `missing_ok`."""
        from kiota_abstractions.api_error import APIError

        try:
            return [item async for item in self.pages(builder, what, **query)]
        except GraphDirectoryError as error:
            cause = error.__cause__
            if missing_ok and isinstance(cause, APIError) and cause.response_status_code == 404:
                log.info("%s: gone since it was listed, skipped", what)
                return None
            raise

    async def _send(self, info: Any, what: str) -> dict[str, Any]:
        from kiota_abstractions.api_error import APIError

        try:
            async with self.limit:
                body = await self.adapter.send_primitive_async(info, "bytes", self.errors)
        except APIError as error:
            status = error.response_status_code
            hint = ""
            if status in (401, 403):
                hint = (" — the identity needs the Microsoft Graph application permission "
                        + ("RoleManagement.Read.Directory" if "directory role" in what else "Application.Read.All"))
            raise GraphDirectoryError(f"Microsoft Graph refused reading {what}: {error}{hint}") from error
        return json.loads(body) if body else {}

    # -------------------------------------------------------------- the reads
    async def read(self) -> DirectorySnapshot:
        client, top = self.client, self.top
        apps, app_fics, sps, roles, role_assignments, tenant_id = await asyncio.gather(
            self.collect(client.applications, "applications", select=APPLICATION_FIELDS, expand=[OWNERS_EXPAND],
                         top=top),
            self.collect(client.applications, "federated identity credentials of applications", select=["id"],
                         expand=["federatedIdentityCredentials"], top=top),
            self.collect(client.service_principals, "service principals", select=SERVICE_PRINCIPAL_FIELDS,
                         expand=[OWNERS_EXPAND], top=top),
            self.collect(client.directory_roles, "directory roles", select=ROLE_FIELDS,
                         expand=["members($select=id)"]),
            self.collect(client.role_management.directory.role_assignments, "directory role assignments",
                         filter=_app_control_filter(), select=ROLE_ASSIGNMENT_FIELDS, expand=["principal"]),
            self.tenant_id(),
        )
        assert apps is not None and app_fics is not None and sps is not None and roles is not None
        assert role_assignments is not None

        fics_by_app = {item["id"]: item.get("federatedIdentityCredentials") or [] for item in app_fics}
        resources = [sp for sp in sps if _offers_application_permissions(sp)]

        # Second round: resource-side assignments, and re-reads of expansions cut at Graph's 20-item cap.
        jobs: dict[tuple[str, str], Any] = {}
        for sp in resources:
            jobs["assignedTo", sp["id"]] = self.collect(
                client.service_principals.by_service_principal_id(sp["id"]).app_role_assigned_to,
                f"app role assignments of {sp.get('displayName')}", missing_ok=True, select=ASSIGNMENT_FIELDS,
                top=top)
        for app in apps:
            if len(app.get("owners") or []) >= EXPAND_ITEM_CAP:
                jobs["appOwners", app["id"]] = self.collect(
                    client.applications.by_application_id(app["id"]).owners, f"owners of application {app['id']}",
                    missing_ok=True, select=OWNER_FIELDS, top=top)
            if len(fics_by_app.get(app["id"], [])) >= EXPAND_ITEM_CAP:
                jobs["appFics", app["id"]] = self.collect(
                    client.applications.by_application_id(app["id"]).federated_identity_credentials,
                    f"federated identity credentials of application {app['id']}", missing_ok=True, top=top)
        for sp in sps:
            if len(sp.get("owners") or []) >= EXPAND_ITEM_CAP:
                jobs["spOwners", sp["id"]] = self.collect(
                    client.service_principals.by_service_principal_id(sp["id"]).owners,
                    f"owners of service principal {sp['id']}", missing_ok=True, select=OWNER_FIELDS, top=top)
        for role in roles:
            if len(role.get("members") or []) >= EXPAND_ITEM_CAP:
                jobs["roleMembers", role["id"]] = self.collect(
                    client.directory_roles.by_directory_role_id(role["id"]).members,
                    f"members of directory role {role.get('displayName')}", missing_ok=True, select=["id"], top=top)
        results = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))

        def full(kind: str, object_id: str, expanded: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
            fresh = results.get((kind, object_id))
            return list(expanded or []) if fresh is None else fresh  # gone since listed: keep what the list said

        listed = {sp["id"] for sp in sps}
        assignments: dict[str, list[AppRoleAssignment]] = {}
        for resource in resources:
            names = {role.get("id"): role.get("value") for role in resource.get("appRoles") or []}
            for row in results.get(("assignedTo", resource["id"])) or []:
                principal = row.get("principalId")
                if row.get("principalType") != "ServicePrincipal" or principal not in listed:
                    continue  # users and groups, or a principal deleted since the list was read
                role_id = row.get("appRoleId") or DEFAULT_ACCESS_ROLE_ID
                assignments.setdefault(principal, []).append(AppRoleAssignment(
                    id=row["id"], resourceId=row.get("resourceId") or resource["id"],
                    resourceDisplayName=row.get("resourceDisplayName") or resource.get("displayName") or "",
                    appRoleId=role_id, permission=_permission(names, role_id),
                    createdDateTime=row.get("createdDateTime")))

        snapshot_apps = [
            Application(
                id=app["id"], appId=app["appId"], displayName=app.get("displayName") or "",
                signInAudience=app.get("signInAudience") or "AzureADMyOrg", createdDateTime=app.get("createdDateTime"),
                passwordCredentials=[_password(c) for c in app.get("passwordCredentials") or []],
                keyCredentials=[_key(c) for c in app.get("keyCredentials") or []],
                federatedIdentityCredentials=[_fic(f) for f in full("appFics", app["id"], fics_by_app.get(app["id"]))],
                owners=_owners(full("appOwners", app["id"], app.get("owners"))),
                web=_redirects(app.get("web")), spa=_redirects(app.get("spa")),
                publicClient=_redirects(app.get("publicClient")),
                servicePrincipalLockConfiguration=app.get("servicePrincipalLockConfiguration"),
                disabledByMicrosoftStatus=app.get("disabledByMicrosoftStatus"),
            )
            for app in apps
        ]
        snapshot_sps = [
            ServicePrincipal(
                id=sp["id"], appId=sp["appId"], displayName=sp.get("displayName") or "",
                servicePrincipalType=sp.get("servicePrincipalType") or "Application",
                appOwnerOrganizationId=sp.get("appOwnerOrganizationId"),
                accountEnabled=sp.get("accountEnabled") is not False,
                alternativeNames=sp.get("alternativeNames") or [],
                passwordCredentials=[_password(c) for c in sp.get("passwordCredentials") or []],
                keyCredentials=[_key(c) for c in sp.get("keyCredentials") or []],
                owners=_owners(full("spOwners", sp["id"], sp.get("owners"))),
                appRoleAssignments=sorted(assignments.get(sp["id"], []),
                                          key=lambda a: (a.resourceDisplayName, a.permission, a.id)),
                disabledByMicrosoftStatus=sp.get("disabledByMicrosoftStatus"),
            )
            for sp in sps
        ]
        snapshot_roles = [
            DirectoryRole(id=role["id"], displayName=role.get("displayName") or "",
                          roleTemplateId=role.get("roleTemplateId") or "",
                          members=[RoleMember(id=member["id"], type="servicePrincipal")
                                   for member in full("roleMembers", role["id"], role.get("members"))
                                   if member.get("@odata.type") == "#microsoft.graph.servicePrincipal"])
            for role in sorted(roles, key=lambda r: r.get("displayName") or "")
        ]
        snapshot_assignments = [_role_assignment(row) for row in sorted(role_assignments, key=lambda r: r["id"])]
        return DirectorySnapshot(tenantId=tenant_id, exportedAt=self.directory.clock(), applications=snapshot_apps,
                                 servicePrincipals=snapshot_sps, directoryRoles=snapshot_roles,
                                 roleAssignments=snapshot_assignments)

    async def tenant_id(self) -> str:
        directory = self.directory
        if directory.tenant_id:
            return directory.tenant_id
        from_token = await asyncio.to_thread(directory._tenant_from_token)
        if from_token:
            return from_token
        document = await self.get_json(self.client.organization,
                                       "the organization (for the tenant id: needs Organization.Read.All, "
                                       "or pass tenant_id)", select=["id"])
        values = document.get("value") or []
        if not values:
            raise GraphDirectoryError("Microsoft Graph returned no organization; pass tenant_id")
        return str(values[0]["id"])


# ---------------------------------------------------------------------- Graph JSON → snapshot model
def _role_assignment(row: dict[str, Any]) -> RoleAssignment:
    principal = _owners([row["principal"]]) if row.get("principal") else []
    return RoleAssignment(id=row["id"], roleDefinitionId=row.get("roleDefinitionId") or "",
                          principalId=row.get("principalId") or "", directoryScopeId=row.get("directoryScopeId") or "/",
                          principal=principal[0] if principal else None)


def _app_control_filter() -> str:
    ids = ", ".join(f"'{template_id}'" for template_id in sorted(tier_model().app_control_roles()))
    return f"roleDefinitionId in ({ids})"


def _offers_application_permissions(sp: dict[str, Any]) -> bool:
    if sp.get("appId") == MICROSOFT_GRAPH_APP_ID:
        return True
    return any("Application" in (role.get("allowedMemberTypes") or []) for role in sp.get("appRoles") or [])


def _permission(names: dict[str, str | None], role_id: str) -> str:
    value = names.get(role_id)
    if value:
        return value
    if role_id == DEFAULT_ACCESS_ROLE_ID:
        return "(default access)"
    return role_id  # a role since removed from the API: keep the grant, named by its id


def _password(credential: dict[str, Any]) -> PasswordCredential:
    return PasswordCredential(keyId=credential["keyId"], displayName=credential.get("displayName"),
                              hint=credential.get("hint"), startDateTime=credential.get("startDateTime"),
                              endDateTime=credential.get("endDateTime"))


def _key(credential: dict[str, Any]) -> KeyCredential:
    # customKeyIdentifier is Edm.Binary (base64 in JSON); for a certificate it is the SHA-1 thumbprint,
    # which sign-in logs show as hex (ServicePrincipalCredentialThumbprint).
    identifier = credential.get("customKeyIdentifier")
    try:
        thumbprint = base64.b64decode(identifier, validate=True).hex().upper() if identifier else None
    except ValueError:
        thumbprint = identifier
    return KeyCredential(keyId=credential["keyId"], displayName=credential.get("displayName"),
                         type=credential.get("type") or "AsymmetricX509Cert", usage=credential.get("usage") or "Verify",
                         customKeyIdentifier=thumbprint, startDateTime=credential.get("startDateTime"),
                         endDateTime=credential.get("endDateTime"))


def _fic(credential: dict[str, Any]) -> FederatedIdentityCredential:
    # A flexible credential has no subject; v1.0 does not return its claimsMatchingExpression (beta does).
    return FederatedIdentityCredential(id=credential["id"], name=credential.get("name") or "",
                                       issuer=credential.get("issuer") or "", subject=credential.get("subject") or "",
                                       claimsMatchingExpression=credential.get("claimsMatchingExpression"),
                                       audiences=credential.get("audiences") or [])


def _redirects(settings: dict[str, Any] | None) -> RedirectUris | None:
    uris = (settings or {}).get("redirectUris") or []
    return RedirectUris(redirectUris=uris) if uris else None


def _owners(objects: list[dict[str, Any]]) -> list[Owner]:
    return [Owner(id=item["id"], type=_OWNER_TYPES.get(item.get("@odata.type") or "", "unknown"),  # type: ignore[arg-type]
                  displayName=item.get("displayName"), userPrincipalName=item.get("userPrincipalName"),
                  mail=item.get("mail"))
            for item in objects if item.get("id")]
