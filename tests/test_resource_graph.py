"""Azure role assignments through azure-mgmt-resourcegraph's real client and azure-identity's
ManagedIdentityCredential, against local servers speaking Resource Graph's and App Service's token protocols."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime

import pytest
from azure.identity import ManagedIdentityCredential
from servers.resource_graph_server import ResourceGraphServer, role_assignment, role_definition
from servers.token_server import ManagedIdentityTokenServer

from shared.directory.model import DirectorySnapshot, ServicePrincipal
from shared.directory.resource_graph import (
    API_VERSION,
    ROLE_ASSIGNMENTS_QUERY,
    AzureRoleReadError,
    AzureRolesDirectory,
    ResourceGraphRoleReader,
    azure_roles_from_settings,
)
from shared.posture.catalog import load_checks
from shared.posture.run import evaluate
from shared.posture.usage import SignInUsage
from shared.settings import SettingsError

OWNER, CONTRIBUTOR, READER = ("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                              "acdd72a7-3385-48ef-bd42-f606fba81ae7")
SUB_A, SUB_B, SUB_OTHER = (str(uuid.UUID(int=n)) for n in (0xA, 0xB, 0xC))
PIPELINE = "6f1c2b0a-1d2e-4f3a-9b8c-7d6e5f4a3b21"
NOW = datetime(2026, 3, 15, tzinfo=UTC)
ASSIGNMENTS_A = 1500


def _rows() -> list[dict]:
    rows = [role_definition(OWNER, "Owner"), role_definition(CONTRIBUTOR, "Contributor"),
            role_definition(READER, "Reader"),
            role_assignment(SUB_A, "a-owner", PIPELINE, OWNER, f"/subscriptions/{SUB_A}")]
    rows += [role_assignment(SUB_A, f"a-{n:05d}", str(uuid.UUID(int=n + 1000)), READER,
                             f"/subscriptions/{SUB_A}/resourceGroups/rg-{n % 7}", "User")
             for n in range(ASSIGNMENTS_A - 1)]
    rows += [role_assignment(SUB_B, f"b-{n}", str(uuid.UUID(int=n + 9000)), CONTRIBUTOR,
                             f"/subscriptions/{SUB_B}/resourceGroups/rg-b", "Group") for n in range(3)]
    rows += [role_assignment(SUB_OTHER, "o-1", PIPELINE, OWNER, f"/subscriptions/{SUB_OTHER}")]
    return rows


@pytest.fixture(scope="module")
def token_server():
    with ManagedIdentityTokenServer() as server:
        yield server


@pytest.fixture(scope="module")
def server(token_server):
    with ResourceGraphServer(_rows(), management_groups={"contoso": [SUB_B]},
                             token_validator=token_server.is_valid) as server:
        yield server


@pytest.fixture
def credential(token_server, monkeypatch):
    for name, value in token_server.environ.items():
        monkeypatch.setenv(name, value)
    with ManagedIdentityCredential() as credential:
        yield credential


def test_one_paged_query_lists_every_assignment_with_its_role_name(server, credential, token_server):
    server.requests.clear()
    reader = ResourceGraphRoleReader(credential, [SUB_A], [], endpoint=server.url)
    assignments = reader.role_assignments()
    assert len(assignments) == ASSIGNMENTS_A
    assert len(server.requests) == reader.requests == math.ceil(ASSIGNMENTS_A / 1000) == 2
    first, second = (request.body for request in server.requests)
    assert first["query"] == second["query"] == ROLE_ASSIGNMENTS_QUERY
    assert first["subscriptions"] == [SUB_A] and "managementGroups" not in first
    assert first["options"] == {"$top": 1000, "resultFormat": "objectArray", "allowPartialScopes": False}
    assert second["options"]["$skipToken"] and second["options"]["$top"] == 1000
    assert {request.api_version for request in server.requests} == {API_VERSION}
    scheme, token = server.requests[0].authorization.split(" ", 1)
    assert scheme == "Bearer" and token_server.resource_of(token) == server.url
    owner = next(a for a in assignments if a.principalId == PIPELINE)
    assert (owner.roleName, owner.roleDefinitionId, owner.scope, owner.principalType) == (
        "Owner", OWNER, f"/subscriptions/{SUB_A}", "ServicePrincipal")
    assert {a.roleName for a in assignments} == {"Owner", "Reader"}  # no other subscription's rows


def test_a_management_group_reads_the_subscriptions_under_it(server, credential):
    assignments = ResourceGraphRoleReader(credential, [], ["contoso"], endpoint=server.url).role_assignments()
    assert sorted((a.roleName, a.principalType) for a in assignments) == [("Contributor", "Group")] * 3
    assert server.requests[-1].body["managementGroups"] == ["contoso"]


def test_a_scope_the_identity_cannot_read_is_an_error_that_says_what_to_grant(server, credential):
    reader = ResourceGraphRoleReader(credential, [], ["finance"], endpoint=server.url)
    with pytest.raises(AzureRoleReadError, match=r"management group finance.*roleAssignments/read"):
        reader.role_assignments()


def test_assignments_join_the_inventory_and_the_posture_check_sees_the_owner(server, credential):
    snapshot = DirectorySnapshot(tenantId="t", exportedAt=NOW, servicePrincipals=[
        ServicePrincipal(id=PIPELINE, appId="a1", displayName="deploy-platform")])

    class Fixed:
        def inventory(self) -> DirectorySnapshot:
            return snapshot

    joined = AzureRolesDirectory(Fixed(), ResourceGraphRoleReader(credential, [SUB_A], [], endpoint=server.url))
    check = load_checks().get("privileged_azure_role")
    result = evaluate([check], joined.inventory(), SignInUsage(read_from=NOW, read_until=NOW), NOW,
                      {check.id: check.values()})
    (finding,) = result.findings
    assert (finding.principal_id, finding.severity) == (PIPELINE, "High")
    assert [a["Role"] for a in finding.evidence["AzureRoleAssignments"]] == ["Owner"]
    assert "Owner on subscription" in finding.summary


def test_settings_turn_the_read_on_only_with_scopes_and_name_a_bad_scope(credential):
    directory = object()
    assert azure_roles_from_settings(directory, credential, {}) is directory  # type: ignore[arg-type]
    assert azure_roles_from_settings(directory, credential, {"AZURE_RBAC_SCOPES": " , "}) is directory
    joined = azure_roles_from_settings(directory, credential, {  # type: ignore[arg-type]
        "AZURE_RBAC_SCOPES": f"/subscriptions/{SUB_A.upper()}/, /providers/Microsoft.Management/managementGroups/mg1"})
    assert isinstance(joined, AzureRolesDirectory)
    assert (joined.reader.subscriptions, joined.reader.management_groups) == ([SUB_A], ["mg1"])
    with pytest.raises(SettingsError, match=r"AZURE_RBAC_SCOPES: 'rg-web' is neither"):
        azure_roles_from_settings(directory, credential, {"AZURE_RBAC_SCOPES": "rg-web"})  # type: ignore[arg-type]
