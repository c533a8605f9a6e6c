"""The Graph directory adapter through the real msgraph-sdk against the local Graph v1.0 server."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from directory_fixtures import EXPORTED_AT, make_snapshot
from servers.graph_server import GraphServer
from servers.token_server import ManagedIdentityTokenServer

from shared.directory.export import export_directory
from shared.directory.graph import GraphDirectory, GraphDirectoryError, graph_directory_from_settings
from shared.directory.model import (
    DirectorySnapshot,
    FederatedIdentityCredential,
    Owner,
    RedirectUris,
    RoleMember,
    ServicePrincipalLockConfiguration,
)
from shared.directory.port import SnapshotFileDirectory
from shared.posture.catalog import load_checks
from shared.posture.run import evaluate
from shared.posture.usage import SignInUsage
from shared.settings import SettingsError

REPO = Path(__file__).resolve().parents[1]

# msgraph-sdk and kiota warn about their own deprecated classes as their modules load.
pytestmark = [pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")]


def anonymous_adapter(server: GraphServer) -> Any:
    """An msgraph request adapter without authentication, pointed at the local server (plain http)."""
    from kiota_abstractions.authentication import AnonymousAuthenticationProvider
    from msgraph import GraphRequestAdapter

    adapter = GraphRequestAdapter(AnonymousAuthenticationProvider())
    adapter.base_url = server.url
    return adapter


def directory_for(server: GraphServer, **options: Any) -> GraphDirectory:
    options.setdefault("clock", lambda: EXPORTED_AT)
    return GraphDirectory(None, request_adapter=anonymous_adapter(server), **options)


def normalised(snapshot: DirectorySnapshot) -> dict[str, Any]:
    """The snapshot as JSON with every list of objects in id order (Graph promises no order)."""

    def sort(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: sort(item) for key, item in value.items()}
        if isinstance(value, list):
            items = [sort(item) for item in value]
            if items and isinstance(items[0], dict):
                return sorted(items, key=lambda item: str(item.get("id") or item.get("keyId")))
            return items
        return value

    return sort(snapshot.model_dump(mode="json"))


def pages(count: int, size: int) -> int:
    return max(1, math.ceil(count / size))


def expected_requests(server: GraphServer, snapshot: DirectorySnapshot, size: int, *, organization: bool) -> int:
    """The requests one inventory needs, worked out from the tenant and the page size alone."""
    expand_size = min(size, server.expand_page_size)
    resources = [sp_id for sp_id, sp in server.service_principals.items() if sp["appRoles"]]
    return (2 * pages(len(snapshot.applications), expand_size)  # owners pass, federated credentials pass
            + pages(len(snapshot.servicePrincipals), expand_size)
            + 1  # directory roles with members
            + pages(len(snapshot.roleAssignments), size)
            + int(organization)
            + sum(pages(len(server.assigned_to.get(sp_id, [])), size) for sp_id in resources))


@pytest.fixture(scope="module")
def tenant() -> DirectorySnapshot:
    return make_snapshot(23, seed=3)


def test_inventory_through_msgraph_sdk_equals_the_served_snapshot_with_exact_request_count(tenant):
    with GraphServer(tenant, page_size=5) as server:
        got = directory_for(server).inventory()
        assert normalised(got) == normalised(tenant)
        assert server.count("", status=200) == server.request_count  # nothing failed, nothing retried
        assert server.request_count == expected_requests(server, tenant, 5, organization=True)
        # Paging really happened: 23 principals in pages of 5 is 5 list requests.
        assert server.count(r"^/servicePrincipals$") == 5
        # Assignments come from the resource side only, never one request per principal.
        assert server.count(r"/appRoleAssignments$") == 0
        assert server.count(r"^/servicePrincipals/[^/]+$") == 0
        listed = [r for r in server.requests if r.path == "/servicePrincipals"]
        assert listed[0].query["$top"] == "999"
        assert "appRoles" in listed[0].query["$select"].split(",")
        assert listed[0].query["$expand"] == "owners($select=id,displayName,userPrincipalName,mail)"


def test_inventory_can_repeat_and_run_inside_an_event_loop(tenant):
    import asyncio

    with GraphServer(tenant, page_size=5) as server, directory_for(server, tenant_id=tenant.tenantId) as directory:
        first = directory.inventory()
        second = directory.inventory()

        async def from_async_code():
            return directory.inventory()  # e.g. an async Functions trigger; must not need its own loop

        assert first == second == asyncio.run(from_async_code())


def test_request_count_grows_with_tenant_size_over_page_size_not_with_principals():
    counts = {}
    for size in (150, 450):
        tenant = make_snapshot(size, seed=7)
        with GraphServer(tenant) as server:  # Graph's own paging: 999, or 100 with $expand
            got = directory_for(server, tenant_id=tenant.tenantId).inventory()
            assert normalised(got) == normalised(tenant)
            assert server.request_count == expected_requests(server, tenant, 999, organization=False)
            counts[size] = server.request_count
    # Three times the principals costs a few more pages, not three times the requests.
    assert counts[450] - counts[150] <= 3 * 3
    assert counts[450] < 20


def test_expansions_cut_at_twenty_are_read_in_full(tenant):
    tenant = tenant.model_copy(deep=True)
    many_owners = [Owner(id=f"00000000-0000-4000-8000-{i:012d}", type="user", displayName=f"Owner {i}",
                         userPrincipalName=f"owner{i}@contoso.example") for i in range(25)]
    tenant.applications[1].owners = many_owners
    tenant.servicePrincipals[3].owners = many_owners[:21]
    members = [RoleMember(id=sp.id) for sp in tenant.servicePrincipals[:22]]
    tenant.directoryRoles[0].members = members
    with GraphServer(tenant, page_size=10) as server:
        got = directory_for(server, tenant_id=tenant.tenantId).inventory()
        assert normalised(got) == normalised(tenant)
        assert server.count(r"^/applications/[^/]+/owners$") == 3  # 25 owners in pages of 10
        assert server.count(r"^/servicePrincipals/[^/]+/owners$") == 3
        assert server.count(r"^/directoryRoles/[^/]+/members$") == 3


def test_throttling_429_waits_retry_after_then_succeeds(tenant):
    with GraphServer(tenant, page_size=5) as server:
        server.fail(429, 1, retry_after=1, path="/servicePrincipals")
        got = directory_for(server, tenant_id=tenant.tenantId, retry_delay=0).inventory()
        assert normalised(got) == normalised(tenant)
        throttled = [r for r in server.requests if r.status == 429]
        assert len(throttled) == 1
        retry = next(r for r in server.requests if r.path == throttled[0].path and r.query == throttled[0].query
                     and r.status == 200)
        assert retry.at - throttled[0].at >= 0.95  # Retry-After: 1 honoured
        assert retry.headers.get("retry-attempt") == "1"


def test_503_is_retried_then_succeeds(tenant):
    with GraphServer(tenant, page_size=5) as server:
        server.fail(503, 2, path="/applications")
        got = directory_for(server, tenant_id=tenant.tenantId, retry_delay=0).inventory()
        assert normalised(got) == normalised(tenant)
        assert server.count("", status=503) == 2
        assert server.request_count == expected_requests(server, tenant, 5, organization=False) + 2


def test_throttling_beyond_the_retries_is_an_error_not_a_partial_inventory(tenant):
    with GraphServer(tenant, page_size=5) as server:
        server.fail(429, 3, retry_after=0, path="/servicePrincipals")
        directory = directory_for(server, tenant_id=tenant.tenantId, retry_delay=0, max_retries=1)
        with pytest.raises(GraphDirectoryError, match="service principals"):
            directory.inventory()


def test_objects_deleted_while_reading_are_skipped_not_errors():
    tenant = make_snapshot(60, seed=11)
    principals = tenant.servicePrincipals
    resource = next(sp for sp in principals if sp.displayName == "Contoso Orders API")
    assert any(a.resourceId == resource.id for sp in principals for a in sp.appRoleAssignments)
    victim = next(sp for sp in principals[20:] if sp.appRoleAssignments)  # listed on a later page
    big_app = tenant.applications[0]
    big_app.owners = [Owner(id=f"00000000-0000-4000-8000-{i:012d}", displayName=f"O{i}") for i in range(22)]

    with GraphServer(tenant, page_size=10) as server:
        state = {"done": False}

        def delete_between_pages(request):
            if request.path == "/servicePrincipals" and not state["done"]:
                state["done"] = True
                # Replication lag: the principal is gone from the list, its grants still show on the resource.
                server.delete_service_principal(victim.id, keep_assignments=True)
                server.delete_service_principal(resource.id)  # its appRoleAssignedTo now 404s

        server.after_request.append(delete_between_pages)
        # The application goes away after it was listed, before its full owner list is re-read. The re-read may
        # come before any service principal page (the reads run concurrently), so the deletion is its 404.
        server.fail(404, path=f"/applications/{big_app.id}/owners")
        got = directory_for(server, tenant_id=tenant.tenantId).inventory()

    ids = {sp.id for sp in got.servicePrincipals}
    assert victim.id not in ids
    assert resource.id in ids  # listed before it went away; its assignments could no longer be read
    assert not any(a.resourceId == resource.id for sp in got.servicePrincipals for a in sp.appRoleAssignments)
    assert any(sp.appRoleAssignments for sp in got.servicePrincipals)  # Microsoft Graph's were read
    assert server.count(r"appRoleAssignedTo$", status=404) == 1
    assert server.count(r"^/applications/[^/]+/owners$", status=404) == 1
    app = next(a for a in got.applications if a.id == big_app.id)
    assert len(app.owners) == 20  # what the list said before the application went away


def test_credential_path_uses_a_managed_identity_token(tenant, monkeypatch):
    from azure.identity import ManagedIdentityCredential

    with ManagedIdentityTokenServer() as tokens:
        for name, value in tokens.environ.items():
            monkeypatch.setenv(name, value)
        for name in ("MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
            monkeypatch.delenv(name, raising=False)

        def authorize(header):
            return bool(header) and header.startswith("Bearer ") and tokens.is_valid(header.removeprefix("Bearer "))

        with GraphServer(tenant, page_size=5, authorize=authorize) as server:
            endpoint = server.endpoint
            credential = ManagedIdentityCredential()
            directory = graph_directory_from_settings(credential, {"GRAPH_ENDPOINT": server.endpoint})
            directory.clock = lambda: EXPORTED_AT
            got = directory.inventory()
            assert normalised(got) == normalised(tenant)
            assert server.count("", status=401) == 0
            assert {r.headers.get("authorization", "")[:10] for r in server.requests} == {"Bearer mi-"}
        # The token is for the Graph endpoint's resource; the local tokens are opaque, so the tenant id
        # came from /organization (in Azure it is the token's tid claim).
        assert {request.resource for request in tokens.requests} == {endpoint}
        assert len(tokens.issued) == 1


def test_importing_the_adapter_does_not_import_msgraph():
    code = ("import sys, shared.directory.graph, shared.directory.export; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('msgraph', 'msgraph_core', 'kiota_abstractions', 'kiota_http', 'azure')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_export_writes_a_snapshot_that_loads_back_equal(tenant, tmp_path):
    out = tmp_path / "exports" / "directory.json"
    with GraphServer(tenant, page_size=5) as server:
        written = export_directory(directory_for(server), out)
    loaded = DirectorySnapshot.load(out)
    assert loaded == written
    assert normalised(loaded) == normalised(tenant)
    assert SnapshotFileDirectory(out).inventory() == written
    assert [p.name for p in out.parent.iterdir()] == ["directory.json"]  # no temporary left behind


def test_settings_choose_the_endpoint():
    directory = graph_directory_from_settings(object(), {})
    assert directory.endpoint == "https://graph.microsoft.com"
    assert directory.scope == "https://graph.microsoft.com/.default"
    assert graph_directory_from_settings(object(), {"GRAPH_ENDPOINT": "https://graph.microsoft.us/"}).endpoint == (
        "https://graph.microsoft.us")
    with pytest.raises(SettingsError, match="GRAPH_ENDPOINT"):
        graph_directory_from_settings(object(), {"GRAPH_ENDPOINT": "http://graph.example.com"})
    with pytest.raises(SettingsError, match="without a version"):
        graph_directory_from_settings(object(), {"GRAPH_ENDPOINT": "https://graph.microsoft.com/v1.0"})


def test_sendmail_is_accepted_and_recorded(tenant):
    message = {"message": {"subject": "digest", "body": {"contentType": "HTML", "content": "<p>hi</p>"},
                           "toRecipients": [{"emailAddress": {"address": "soc@contoso.example"}}]},
               "saveToSentItems": False}
    with GraphServer(tenant) as server:
        request = urllib.request.Request(f"{server.url}/users/auditor@contoso.example/sendMail",
                                         data=json.dumps(message).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            assert response.status == 202
        assert server.sent_mail == [("auditor@contoso.example", message)]


def test_server_responses_parse_as_msgraph_sdk_typed_models(tenant):
    """The adapter reads JSON, but the server must also satisfy the SDK's strict typed models (GUIDs, base64)."""
    import asyncio

    from msgraph import GraphServiceClient

    async def read(server):
        client = GraphServiceClient(request_adapter=anonymous_adapter(server))
        principals = await client.service_principals.get()
        graph = next(sp for sp in principals.value if sp.app_id == "00000003-0000-0000-c000-000000000000")
        assigned = await client.service_principals.by_service_principal_id(graph.id).app_role_assigned_to.get()
        roles = await client.directory_roles.get()
        return principals, graph, assigned, roles

    with GraphServer(tenant) as server:
        principals, graph, assigned, roles = asyncio.run(read(server))
    assert len(principals.value) == len(tenant.servicePrincipals)
    assert {str(role.id) for role in graph.app_roles} >= {"9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30"}
    assert all(row.principal_id is not None and row.app_role_id is not None for row in assigned.value)
    with_cert = next(sp for sp in principals.value if sp.key_credentials)
    assert len(with_cert.key_credentials[0].custom_key_identifier) == 20  # a SHA-1 thumbprint, base64 on the wire
    assert [role.role_template_id for role in roles.value]


def test_server_rejects_properties_graph_v1_does_not_have(tenant):
    with GraphServer(tenant) as server:
        url = f"{server.url}/servicePrincipals?$select=id,createdDateTime"
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url)
        assert error.value.code == 400


def test_snapshot_builder_is_deterministic_and_realistic():
    first, second = make_snapshot(300, seed=5), make_snapshot(300, seed=5)
    assert first == second
    assert len(first.servicePrincipals) == 300
    kinds = {sp.servicePrincipalType for sp in first.servicePrincipals}
    assert kinds == {"Application", "ManagedIdentity"}
    assert any(app.federatedIdentityCredentials for app in first.applications)
    assert any(a.permission == "RoleManagement.ReadWrite.Directory" for sp in first.servicePrincipals
               for a in sp.appRoleAssignments)
    assert all(role.members for role in first.directoryRoles)
    assert first.exportedAt == datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


def test_a_flexible_federated_credential_arrives_without_a_subject_and_counts_as_broad(tenant):
    app = tenant.applications[0].model_copy(deep=True)
    app.federatedIdentityCredentials = [FederatedIdentityCredential(
        id="3f6d0c8e-58b1-4a3e-9a59-1f0a4d1e2c77", name="flexible",
        issuer="https://token.actions.githubusercontent.com", subject="")]
    flexible = tenant.model_copy(update={"applications": [app, *tenant.applications[1:]]})
    with GraphServer(flexible) as server:
        got = directory_for(server).inventory()
    (fic,) = next(a for a in got.applications if a.id == app.id).federatedIdentityCredentials
    assert (fic.subject, fic.claimsMatchingExpression) == ("", None)
    check = load_checks().get("federated_credential_broad_subject")
    result = evaluate([check], got, SignInUsage(read_from=EXPORTED_AT, read_until=EXPORTED_AT), EXPORTED_AT,
                      {check.id: check.values()})
    (finding,) = [f for f in result.findings if f.entities["Credential.KeyId"] == fic.id]
    assert finding.severity == "High" and "flexible claims expression" in finding.summary


def test_redirect_uris_and_the_property_lock_are_read_in_the_same_application_pages(tenant):
    app = tenant.applications[0].model_copy(deep=True, update={
        "signInAudience": "AzureADMultipleOrgs",
        "web": RedirectUris(redirectUris=["http://staging.contoso.example/signin-oidc"]),
        "spa": RedirectUris(redirectUris=["https://*.contoso.example/app"]),
        "publicClient": RedirectUris(redirectUris=["http://localhost:8400"]),
        "servicePrincipalLockConfiguration": ServicePrincipalLockConfiguration(isEnabled=True, identifierUris=True)})
    changed = tenant.model_copy(update={"applications": [app, *tenant.applications[1:]]})
    with GraphServer(changed, page_size=5) as server:
        got = directory_for(server).inventory()
        assert server.request_count == expected_requests(server, changed, 5, organization=True)
        selected = next(r for r in server.requests if r.path == "/applications" and "owners" in r.query.get(
            "$expand", "")).query["$select"].split(",")
    assert normalised(got) == normalised(changed)
    assert {"web", "spa", "publicClient", "servicePrincipalLockConfiguration"} <= set(selected)


def test_role_assignments_of_app_management_roles_come_with_their_scope_and_assignee(tenant):
    with GraphServer(tenant) as server:
        got = directory_for(server, tenant_id=tenant.tenantId).inventory()
        unfiltered = urllib.request.Request(f"{server.url}/roleManagement/directory/roleAssignments")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(unfiltered)
    request = next(r for r in server.requests if r.path == "/roleManagement/directory/roleAssignments")
    assert request.query["$expand"] == "principal"
    assert request.query["$filter"].startswith("roleDefinitionId in (")
    assert "'9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3'" in request.query["$filter"]  # Application Administrator
    assert "'158c047a-c907-4556-b7ef-446551a6b5f7'" in request.query["$filter"]  # Cloud Application Administrator
    assert got.roleAssignments == sorted(tenant.roleAssignments, key=lambda a: a.id)
    assert {a.directoryScopeId == "/" for a in got.roleAssignments} == {True, False}
    assert {a.principal.type for a in got.roleAssignments} == {"user", "servicePrincipal"}
    assert refused.value.code == 400  # Graph wants a filter on this list
