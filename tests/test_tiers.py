"""The tier model: the copy of Cloud-Architekt's classification, its lookups, and its refresh command against a
local server that serves a small upstream fixture the way raw.githubusercontent.com and the GitHub API do."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pytest
from typer.testing import CliRunner

from shared.cli import app
from shared.directory.tiers import refresh as refresh_module
from shared.directory.tiers.lookup import (
    APP_ROLES_FILE,
    AZURE_ROLES_FILE,
    ENTRA_ROLES_FILE,
    HERE,
    azure_role_tier,
    entra_role_tier,
    load_rated,
    permission_tier,
    tier_model,
)
from shared.directory.tiers.refresh import RefreshError, refresh
from tests.servers._http import LocalServer, QuietHandler

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
GRAPH = "00000003-0000-0000-c000-000000000000"
SHAREPOINT = "00000003-0000-0ff1-ce00-000000000000"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(("role", "tier"), [
    ("Directory Writers", 0), ("9360feb5-f418-4baa-8175-e2a00bac4301", 0),
    ("Application Administrator", 0), ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", 0),
    ("Cloud Application Administrator", 0), ("Global Administrator", 0),
    ("Directory Readers", 1), ("Device Join", None), ("No Such Role", None),
])
def test_entra_roles(role, tier):
    assert entra_role_tier(role) == tier


def test_the_roles_that_control_applications_come_from_upstream_actions():
    roles = {role.name for role in tier_model().app_control_roles().values()}
    assert {"Application Administrator", "Cloud Application Administrator", "Hybrid Identity Administrator",
            "Global Administrator"} <= roles
    assert "Directory Writers" not in roles and "User Administrator" not in roles


@pytest.mark.parametrize(("permission", "role_id", "api", "tier"), [
    ("RoleManagement.ReadWrite.Directory", None, None, 0),
    ("AppRoleAssignment.ReadWrite.All", "06b708a9-e830-4db3-a914-8e69da51d44f", GRAPH, 0),
    ("Application.ReadWrite.OwnedBy", None, None, 0),
    ("Mail.Send", "b633e1c5-b582-4048-a93e-9f11b44c7e96", GRAPH, 1),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214", GRAPH, 2),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214", SHAREPOINT, 1),
    ("User.Read.All", "df021288-bdef-4463-88db-98f22de89214", None, 1),  # API unknown: the most privileged
    ("user.read.all", None, GRAPH, 2),
    ("Made.Up.All", None, None, None),
])
def test_application_permissions(permission, role_id, api, tier):
    assert permission_tier(permission, role_id, api) == tier


@pytest.mark.parametrize(("role", "tier"), [
    ("Owner", 0), ("User Access Administrator", 0), ("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", 0),
    ("/subscriptions/3c9d2b7a-6e51-4f08-a1b2-c3d4e5f60718/providers/Microsoft.Authorization/roleDefinitions/"
     "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", 0),
    ("Reader", 2), ("Azure Center for SAP solutions Management role", None), ("Custom Role", None),
])
def test_azure_roles(role, tier):
    assert azure_role_tier(role) == tier


@pytest.mark.parametrize("path", [APP_ROLES_FILE, ENTRA_ROLES_FILE, AZURE_ROLES_FILE], ids=lambda p: p.name)
def test_every_entry_of_the_copy_has_a_guid_a_name_and_a_tier(path):
    entries = json.loads(path.read_text(encoding="utf-8"))
    bad = [entry for entry in entries if not GUID.match(entry["id"]) or not entry["name"].strip()
           or entry["tier"] not in (0, 1, 2, None) or ("api" in entry and not GUID.match(entry["api"]))]
    assert entries and bad == []
    assert len(load_rated(path)) == len(entries)
    if path != APP_ROLES_FILE:  # role ids and names are unique; app role ids recur across APIs
        assert len({e["id"] for e in entries}) == len({e["name"] for e in entries}) == len(entries)


def test_the_copy_carries_its_licence_and_source():
    assert "MIT License" in (HERE / "LICENSE").read_text() and "Thomas Naunheim" in (HERE / "LICENSE").read_text()
    source = (HERE / "SOURCE.md").read_text()
    assert "Cloud-Architekt/AzurePrivilegedIAM" in source and re.search(r"`[0-9a-f]{40}`", source)
    for path in (APP_ROLES_FILE, ENTRA_ROLES_FILE, AZURE_ROLES_FILE):
        assert f"`{path.name}`" in source


def _upstream() -> dict[str, object]:
    """A small upstream: one item of each kind per tier, in upstream's own shape."""
    app_roles = [
        {"AppId": GRAPH, "AppRoleId": "9e3f62cf-ca93-4989-b6ce-bf83c28f9fe8",
         "AppRoleDisplayName": "RoleManagement.ReadWrite.Directory", "Category": "Privileged IAM",
         "EAMTierLevelName": "ControlPlane", "EAMTierLevelTagValue": "0"},
        {"AppId": GRAPH, "AppRoleId": "b633e1c5-b582-4048-a93e-9f11b44c7e96", "AppRoleDisplayName": "Mail.Send",
         "Category": "Exchange Online", "EAMTierLevelName": "ManagementPlane", "EAMTierLevelTagValue": "1"},
    ]
    entra = [
        {"RoleId": "9360feb5-f418-4baa-8175-e2a00bac4301", "RoleName": "Directory Writers", "isPrivileged": True,
         "RolePermissions": [{"AuthorizedResourceAction": "microsoft.directory/groups/members/update"}],
         "Classification": {"EAMTierLevelName": "ControlPlane", "EAMTierLevelTagValue": "0"}},
        {"RoleId": "158c047a-c907-4556-b7ef-446551a6b5f7", "RoleName": "Cloud Application Administrator",
         "isPrivileged": True, "Classification": {"EAMTierLevelName": "ControlPlane", "EAMTierLevelTagValue": "0"},
         "RolePermissions": [{"AuthorizedResourceAction": "microsoft.directory/applications/credentials/update"},
                             {"AuthorizedResourceAction": "microsoft.directory/applications/audience/update"},
                             {"AuthorizedResourceAction": None}]},
        {"RoleId": "9c6df0f2-1e7c-4dc3-b195-66dfbd24aa8f", "RoleName": "Device Join", "isPrivileged": False,
         "RolePermissions": [],
         "Classification": {"EAMTierLevelName": "Unclassified", "EAMTierLevelTagValue": "Unclassified"}},
    ]
    azure = [
        {"RoleId": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "RoleName": "Reader", "IsCustom": False,
         "Classification": {"EAMTierLevelName": "UserAccess", "EAMTierLevelTagValue": "2"}},
    ]
    return {
        f"/raw/{COMMIT}/Classification/Classification_AppRoles.json": app_roles,
        f"/raw/{COMMIT}/Classification/Classification_EntraIdDirectoryRoles.json": entra,
        f"/raw/{COMMIT}/Classification/Classification_AzureResources.json": azure,
        f"/raw/{COMMIT}/LICENSE": "MIT License\n\nCopyright (c) 2024 Thomas Naunheim\n",
    }


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        owner = self.server.owner  # type: ignore[attr-defined]
        path = urlsplit(self.path).path
        owner.requests.append(path)
        if path == "/api/commits/main":
            body = (COMMIT if self.headers.get("Accept") == "application/vnd.github.sha" else "{}").encode()
        elif path in owner.files:
            document = owner.files[path]
            body = (document if isinstance(document, str) else json.dumps(document)).encode()
        else:
            self.send_json(404, {"message": "Not Found"})
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Upstream(LocalServer):
    handler = _Handler

    def __init__(self, files: dict[str, object]) -> None:
        super().__init__()
        self.files = files
        self.requests: list[str] = []


def test_refresh_resolves_the_branch_and_rewrites_the_copy(tmp_path):
    with _Upstream(_upstream()) as server:
        result = refresh("main", raw_url=f"{server.url}/raw", api_url=f"{server.url}/api", target=tmp_path,
                         now=datetime(2026, 12, 1, tzinfo=UTC))
    assert result.commit == COMMIT and server.requests[0] == "/api/commits/main"
    assert result.counts == {"app-roles.json": 2, "entra-roles.json": 3, "azure-roles.json": 1}
    assert json.loads((tmp_path / "entra-roles.json").read_text()) == [
        {"id": "158c047a-c907-4556-b7ef-446551a6b5f7", "name": "Cloud Application Administrator", "tier": 0,
         "appControl": ["microsoft.directory/applications/credentials/update"]},
        {"id": "9c6df0f2-1e7c-4dc3-b195-66dfbd24aa8f", "name": "Device Join", "tier": None},
        {"id": "9360feb5-f418-4baa-8175-e2a00bac4301", "name": "Directory Writers", "tier": 0}]
    assert json.loads((tmp_path / "app-roles.json").read_text())[0] == {
        "id": "b633e1c5-b582-4048-a93e-9f11b44c7e96", "name": "Mail.Send", "api": GRAPH, "tier": 1}
    assert (tmp_path / "LICENSE").read_text().startswith("MIT License")
    source = (tmp_path / "SOURCE.md").read_text()
    assert f"`{COMMIT}`" in source and "`main` on 2026-12-01" in source
    assert "| `azure-roles.json` | `Classification/Classification_AzureResources.json` | 1 |" in source


@pytest.mark.parametrize(("change", "message"), [
    (lambda files: files.pop(f"/raw/{COMMIT}/Classification/Classification_AzureResources.json"),
     "Classification_AzureResources.json: HTTP 404"),
    (lambda files: files[f"/raw/{COMMIT}/Classification/Classification_EntraIdDirectoryRoles.json"][2].pop("RoleId"),
     "Classification_EntraIdDirectoryRoles.json, entry 3: missing or bad field 'RoleId'"),
    (lambda files: files[f"/raw/{COMMIT}/Classification/Classification_AppRoles.json"][0].update(
        EAMTierLevelTagValue="7"), "Classification_AppRoles.json, entry 1: missing or bad field tier '7'"),
    (lambda files: files[f"/raw/{COMMIT}/Classification/Classification_AppRoles.json"][0].update(
        AppRoleId="RoleManagement"), "Classification_AppRoles.json, entry 1: id 'RoleManagement' is not a GUID"),
])
def test_a_bad_upstream_names_the_file_and_entry_and_writes_nothing(tmp_path, change, message):
    files = _upstream()
    change(files)
    with _Upstream(files) as server, pytest.raises(RefreshError) as error:
        refresh("main", raw_url=f"{server.url}/raw", api_url=f"{server.url}/api", target=tmp_path,
                now=datetime(2026, 12, 1, tzinfo=UTC))
    assert message in str(error.value)
    assert list(tmp_path.iterdir()) == []


def test_the_command_refreshes_a_pinned_commit_without_the_api(tmp_path, monkeypatch):
    monkeypatch.setattr(refresh_module, "HERE", tmp_path)
    with _Upstream(_upstream()) as server:
        result = CliRunner().invoke(app, ["tiers", "refresh", "--ref", COMMIT, "--raw-url", f"{server.url}/raw",
                                          "--api-url", f"{server.url}/nowhere"])
    assert result.exit_code == 0, result.output
    assert f"copied commit {COMMIT}" in result.output
    assert not any(path.startswith("/nowhere") for path in server.requests)
    assert json.loads((tmp_path / "azure-roles.json").read_text())[0]["name"] == "Reader"


def test_the_command_reports_an_unreachable_upstream(tmp_path, monkeypatch):
    monkeypatch.setattr(refresh_module, "HERE", tmp_path)
    with _Upstream({}) as server:
        result = CliRunner().invoke(app, ["tiers", "refresh", "--raw-url", f"{server.url}/raw",
                                          "--api-url", f"{server.url}/api"])
    assert result.exit_code == 2
    assert "HTTP 404" in result.output and "the copy is unchanged" in result.output
    assert list(tmp_path.iterdir()) == []
