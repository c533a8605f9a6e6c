"""What tier is this application permission, Entra role or Azure role: 0, 1, 2, or None when the model does
not rate it.

Tier 0 is the control plane (it can take over the tenant or the Azure estate), tier 1 the management plane
(it manages workloads or reads and changes their data), tier 2 user access. The data are the JSON files beside
this module, copied from Cloud-Architekt/AzurePrivilegedIAM (SOURCE.md names the commit).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
APP_ROLES_FILE = HERE / "app-roles.json"
ENTRA_ROLES_FILE = HERE / "entra-roles.json"
AZURE_ROLES_FILE = HERE / "azure-roles.json"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Entra role actions that let the holder add a credential (or an owner, who then adds one) to an application or
# service principal: the roles that hold any of them can take over a workload identity.
APP_CONTROL_ACTIONS = frozenset(
    f"microsoft.directory/{kind}/{action}"
    for kind in ("applications", "servicePrincipals")
    for action in ("credentials/update", "owners/update", "allProperties/allTasks", "allProperties/update"))

Tier = int | None


@dataclass(frozen=True)
class Rated:
    """One classified item: an app role of an API (api = its appId) or a role definition."""

    id: str
    name: str
    tier: Tier
    api: str | None = None
    app_control: tuple[str, ...] = ()  # for Entra roles: the APP_CONTROL_ACTIONS it holds


class TierModel:
    def __init__(self, app_roles: list[Rated], entra_roles: list[Rated], azure_roles: list[Rated]) -> None:
        self.app_roles, self.entra_roles, self.azure_roles = app_roles, entra_roles, azure_roles
        self._app_role_ids: dict[str, list[Rated]] = {}
        self._permission_names: dict[str, list[Rated]] = {}
        for role in app_roles:
            self._app_role_ids.setdefault(role.id.casefold(), []).append(role)
            self._permission_names.setdefault(role.name.casefold(), []).append(role)
        self._entra = _by_id_and_name(entra_roles)
        self._azure = _by_id_and_name(azure_roles)

    def permission(self, value: str, app_role_id: str | None = None, api: str | None = None) -> Tier:
        """An application permission's tier: by its app role id when the model knows it, else by its value, on the
        API with appId `api` when given. Ids and values recur across APIs (SharePoint reuses Graph's id for
        User.Read.All, tier 2 on Graph and 1 there): without the API, the most privileged of them counts."""
        roles = self._app_role_ids.get((app_role_id or "").casefold()) or self._permission_names.get(value.casefold())
        on_api = [role for role in roles or [] if api and role.api == api.casefold()]
        return _most_privileged(role.tier for role in on_api or roles or [])

    def entra_role(self, template_id_or_name: str) -> Tier:
        """An Entra directory role's tier, by role template id (the same in every tenant) or display name."""
        role = self._entra.get(template_id_or_name.casefold())
        return role.tier if role else None

    def entra_role_name(self, template_id: str) -> str | None:
        role = self._entra.get(template_id.casefold())
        return role.name if role else None

    def azure_role(self, definition: str) -> Tier:
        """An Azure built-in role's tier, by role definition id (a GUID or the full
        /providers/Microsoft.Authorization/roleDefinitions/<guid> resource id) or by name."""
        role = self._azure.get(definition.rstrip("/").rsplit("/", 1)[-1].casefold())
        return role.tier if role else None

    def app_control_roles(self) -> dict[str, Rated]:
        """The Entra roles that can add a credential or an owner to an application or service principal, by role
        template id: Application Administrator, Cloud Application Administrator, Hybrid Identity Administrator..."""
        return {role.id.casefold(): role for role in self.entra_roles if role.app_control}

    def tier0_permissions(self) -> list[str]:
        """The permission values some API rates tier 0, sorted: the default of the rules' permission lists."""
        return sorted({role.name for role in self.app_roles if role.tier == 0})

    def tier0_entra_roles(self) -> list[str]:
        """The tier-0 Entra role names, sorted."""
        return sorted({role.name for role in self.entra_roles if role.tier == 0})


@cache
def tier_model() -> TierModel:
    return TierModel(load_rated(APP_ROLES_FILE), load_rated(ENTRA_ROLES_FILE), load_rated(AZURE_ROLES_FILE))


def permission_tier(value: str, app_role_id: str | None = None, api: str | None = None) -> Tier:
    return tier_model().permission(value, app_role_id, api)


def entra_role_tier(template_id_or_name: str) -> Tier:
    return tier_model().entra_role(template_id_or_name)


def azure_role_tier(definition: str) -> Tier:
    return tier_model().azure_role(definition)


def tier_text(tier: Tier) -> str:
    """How people read a tier: "tier 0", or "unrated" when the model has none."""
    return "unrated" if tier is None else f"tier {tier}"


def load_rated(path: Path) -> list[Rated]:
    """A copy's entries; ValueError naming the file and entry when one is malformed."""
    entries = json.loads(path.read_text(encoding="utf-8"))
    rated = []
    for number, entry in enumerate(entries, 1):
        try:
            rated.append(Rated(entry["id"], entry["name"], parse_tier(entry["tier"]), entry.get("api"),
                               tuple(entry.get("appControl", ()))))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path.name}, entry {number}: {error}") from None
    return rated


def parse_tier(value: object) -> Tier:
    """Upstream's EAMTierLevelTagValue ("0", "1", "2", "Unclassified") or a copy's 0/1/2/null as a Tier."""
    if value is None or value == "Unclassified":
        return None
    tier = int(value)  # type: ignore[call-overload]
    if tier not in (0, 1, 2):
        raise ValueError(f"tier {value!r} is not 0, 1 or 2")
    return tier


def _by_id_and_name(roles: list[Rated]) -> dict[str, Rated]:
    found: dict[str, Rated] = {}
    for role in roles:
        found.setdefault(role.id.casefold(), role)
        found.setdefault(role.name.casefold(), role)
    return found


def _most_privileged(tiers: Iterable[Tier]) -> Tier:
    rated = [tier for tier in tiers if tier is not None]
    return min(rated) if rated else None
