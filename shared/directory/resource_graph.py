"""Azure role assignments of every principal, read through Azure Resource Graph (azure-mgmt-resourcegraph).

One query over the configured subscriptions and management groups lists every role assignment with its
role's name (the role definitions joined in the same query), paged with `$skipToken`, 1,000 rows a page:
the request count grows with the number of assignments over 1,000, never with the number of principals.

    POST {endpoint}/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01
    {"subscriptions": [...], "managementGroups": [...], "query": ROLE_ASSIGNMENTS_QUERY,
     "options": {"$top": 1000, "$skipToken": ..., "resultFormat": "objectArray"}}

Permissions: read on the scopes, e.g. Reader, or a custom role with only
Microsoft.Authorization/roleAssignments/read and Microsoft.Authorization/roleDefinitions/read (infra/ offers
it). Resource Graph answers for the scopes the identity can read; `allowPartialScopes` is left off, so a
scope it cannot read is an error rather than a silently short list. The SDK is imported when a read runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.directory.model import AzureRoleAssignment, DirectorySnapshot
from shared.directory.port import Directory
from shared.settings import SettingsError, read_setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

DEFAULT_ENDPOINT = "https://management.azure.com"
API_VERSION = "2022-10-01"
PAGE_SIZE = 1000  # Resource Graph's largest page
ROLE_ASSIGNMENTS_QUERY = """authorizationresources
| where type =~ 'microsoft.authorization/roleassignments'
| extend principalId = tostring(properties.principalId), principalType = tostring(properties.principalType),
    scope = tostring(properties.scope),
    roleDefinitionId = tolower(extract('([0-9a-fA-F-]{36})$', 1, tostring(properties.roleDefinitionId)))
| join kind=leftouter (
    authorizationresources
    | where type =~ 'microsoft.authorization/roledefinitions'
    | summarize roleName = max(tostring(properties.roleName)) by roleDefinitionId = tolower(name)
  ) on roleDefinitionId
| project id, principalId, principalType, scope, roleDefinitionId, roleName
| order by id asc"""


class AzureRoleReadError(RuntimeError):
    """Resource Graph refused or failed the read; the message says which scopes and why."""


class ResourceGraphRoleReader:
    """Every role assignment in `subscriptions` and `management_groups`, one paged query."""

    def __init__(self, credential: TokenCredential | None, subscriptions: list[str], management_groups: list[str],
                 endpoint: str = DEFAULT_ENDPOINT, client: Any = None) -> None:
        if not subscriptions and not management_groups:
            raise ValueError("name at least one subscription or management group to read")
        self.subscriptions = subscriptions
        self.management_groups = management_groups
        self.endpoint = endpoint.rstrip("/")
        self._plain_http = urlsplit(self.endpoint).scheme == "http"
        self.client = client or _client(credential, self.endpoint)
        self.requests = 0

    def role_assignments(self) -> list[AzureRoleAssignment]:
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        options: dict[str, Any] = {"enforce_https": False} if self._plain_http else {}
        rows: list[dict[str, Any]] = []
        skip_token: str | None = None
        while True:
            request = QueryRequest(query=ROLE_ASSIGNMENTS_QUERY, subscriptions=self.subscriptions or None,
                                   management_groups=self.management_groups or None,
                                   options=QueryRequestOptions(top=PAGE_SIZE, skip_token=skip_token,
                                                               result_format="objectArray"))
            try:
                self.requests += 1
                response = self.client.resources(request, **options)
            except HttpResponseError as error:
                hint = (" — the identity needs Reader, or Microsoft.Authorization/roleAssignments/read and "
                        "roleDefinitions/read, on them" if error.status_code in (401, 403) else "")
                raise AzureRoleReadError(f"Azure Resource Graph refused reading role assignments of "
                                         f"{self._scopes()}: {error.message}{hint}") from error
            except AzureError as error:
                raise AzureRoleReadError(f"Azure Resource Graph read of {self._scopes()} failed: "
                                         f"{type(error).__name__}: {error.message}") from error
            if str(response.result_truncated).lower() == "true":
                raise AzureRoleReadError(f"Azure Resource Graph cut the role assignments of {self._scopes()} short "
                                         "(resultTruncated): the query must page, not truncate")
            rows += response.data or []
            skip_token = response.skip_token
            if not skip_token:
                return [_assignment(row) for row in rows]

    def _scopes(self) -> str:
        return ", ".join([*(f"subscription {s}" for s in self.subscriptions),
                          *(f"management group {g}" for g in self.management_groups)])


class AzureRolesDirectory:
    """A Directory whose snapshot also carries the Azure role assignments Resource Graph lists."""

    def __init__(self, directory: Directory, reader: ResourceGraphRoleReader) -> None:
        self.directory = directory
        self.reader = reader

    def inventory(self) -> DirectorySnapshot:
        snapshot = self.directory.inventory()
        return snapshot.model_copy(update={"azureRoleAssignments": self.reader.role_assignments()})


def azure_roles_from_settings(directory: Directory, credential: TokenCredential,
                              environ: Mapping[str, str] | None = None) -> Directory:
    """`directory` with Azure role assignments when AZURE_RBAC_SCOPES names scopes; as it is otherwise."""
    scopes = read_setting("AZURE_RBAC_SCOPES", environ)
    if not scopes or not any(scopes):
        return directory  # off unless scopes are configured
    endpoint = str(read_setting("AZURE_RESOURCE_MANAGER_ENDPOINT", environ)).rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise SettingsError(f"setting AZURE_RESOURCE_MANAGER_ENDPOINT: must be an https URL such as "
                            f"{DEFAULT_ENDPOINT} (got {endpoint!r})")
    return AzureRolesDirectory(directory, ResourceGraphRoleReader(credential, *scopes, endpoint=endpoint))


def _client(credential: TokenCredential | None, endpoint: str) -> Any:
    from azure.mgmt.resourcegraph import ResourceGraphClient

    return ResourceGraphClient(credential, base_url=endpoint, api_version=API_VERSION,
                               credential_scopes=[f"{endpoint}/.default"])


def _assignment(row: Mapping[str, Any]) -> AzureRoleAssignment:
    return AzureRoleAssignment(id=str(row.get("id") or ""), principalId=str(row.get("principalId") or "").lower(),
                               principalType=str(row.get("principalType") or ""),
                               roleDefinitionId=str(row.get("roleDefinitionId") or "").lower(),
                               roleName=str(row.get("roleName") or ""), scope=str(row.get("scope") or ""))
