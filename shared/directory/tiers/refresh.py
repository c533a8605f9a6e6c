"""Rewrite the tier model's copy from Cloud-Architekt/AzurePrivilegedIAM: resolve the branch or tag to a commit,
read the classification files and the licence at that commit from the raw file host, keep of each entry only
its id, name, tier (and API for app roles), and record the source in SOURCE.md.

Nothing is written unless every file was read and every entry has the fields the copy needs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from shared.directory.tiers.lookup import (
    APP_CONTROL_ACTIONS,
    APP_ROLES_FILE,
    AZURE_ROLES_FILE,
    ENTRA_ROLES_FILE,
    HERE,
    parse_tier,
)

REPOSITORY = "Cloud-Architekt/AzurePrivilegedIAM"
RAW_URL = f"https://raw.githubusercontent.com/{REPOSITORY}"
API_URL = f"https://api.github.com/repos/{REPOSITORY}"
COMMIT = re.compile(r"^[0-9a-f]{40}$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


class RefreshError(Exception):
    """Upstream could not be read, or a file does not have the shape the copy needs."""


def _app_role(entry: dict[str, Any]) -> dict[str, Any]:
    return {"id": entry["AppRoleId"], "name": entry["AppRoleDisplayName"], "api": entry["AppId"],
            "tier": parse_tier(entry["EAMTierLevelTagValue"])}


def _role(entry: dict[str, Any]) -> dict[str, Any]:
    classification = entry["Classification"] or {}
    return {"id": entry["RoleId"], "name": entry["RoleName"],
            "tier": parse_tier(classification.get("EAMTierLevelTagValue"))}


def _entra_role(entry: dict[str, Any]) -> dict[str, Any]:
    """A role, and the actions of it that give control of applications and service principals (kept only there)."""
    actions = sorted({permission["AuthorizedResourceAction"] for permission in entry["RolePermissions"] or []
                      if permission["AuthorizedResourceAction"] in APP_CONTROL_ACTIONS})
    return {**_role(entry), **({"appControl": actions} if actions else {})}


@dataclass(frozen=True)
class Copied:
    upstream: str  # path in the upstream repository
    target: Path
    prune: Callable[[dict[str, Any]], dict[str, Any]]


COPIES = (
    Copied("Classification/Classification_AppRoles.json", APP_ROLES_FILE, _app_role),
    Copied("Classification/Classification_EntraIdDirectoryRoles.json", ENTRA_ROLES_FILE, _entra_role),
    Copied("Classification/Classification_AzureResources.json", AZURE_ROLES_FILE, _role),
)


@dataclass(frozen=True)
class Refreshed:
    commit: str
    counts: dict[str, int]  # copy file name -> entries


def refresh(ref: str = "main", *, raw_url: str = RAW_URL, api_url: str = API_URL, target: Path | None = None,
            now: datetime) -> Refreshed:
    """Read upstream at `ref` and rewrite the copy in `target` (the files, LICENSE and SOURCE.md), by default the
    one the tier model reads."""
    target = target or HERE
    with httpx.Client(timeout=60, follow_redirects=True) as http:
        commit = _commit(http, api_url, ref)
        copies = {copied.target.name: _pruned(http, raw_url, commit, copied) for copied in COPIES}
        licence = _get(http, f"{raw_url}/{commit}/LICENSE").text
    for name, entries in copies.items():
        (target / name).write_text(_one_per_line(entries), encoding="utf-8")
    (target / "LICENSE").write_text(licence, encoding="utf-8")
    counts = {name: len(entries) for name, entries in copies.items()}
    (target / "SOURCE.md").write_text(source_text(commit, ref, counts, now), encoding="utf-8")
    return Refreshed(commit, counts)


def _one_per_line(entries: list[dict[str, Any]]) -> str:
    """A JSON list with one entry a line: small, and a refresh's diff shows which items changed."""
    return "[\n" + ",\n".join(json.dumps(entry) for entry in entries) + "\n]\n"


def _commit(http: httpx.Client, api_url: str, ref: str) -> str:
    if COMMIT.match(ref):
        return ref
    sha = _get(http, f"{api_url}/commits/{ref}", {"Accept": "application/vnd.github.sha"}).text.strip()
    if not COMMIT.match(sha):
        raise RefreshError(f"{api_url}/commits/{ref} did not answer a commit id")
    return sha


def _pruned(http: httpx.Client, raw_url: str, commit: str, copied: Copied) -> list[dict[str, Any]]:
    url = f"{raw_url}/{commit}/{copied.upstream}"
    try:
        entries = _get(http, url).json()
    except ValueError as error:
        raise RefreshError(f"{copied.upstream}: not JSON ({error})") from None
    if not isinstance(entries, list):
        raise RefreshError(f"{copied.upstream}: expected a list of entries")
    pruned = []
    for number, entry in enumerate(entries, 1):
        try:
            item = copied.prune(entry)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise RefreshError(f"{copied.upstream}, entry {number}: missing or bad field {error}") from None
        if not GUID.match(item["id"]) or not item["name"]:
            raise RefreshError(f"{copied.upstream}, entry {number}: id {item['id']!r} is not a GUID "
                               "or the name is empty")
        pruned.append(item)
    return sorted(pruned, key=lambda item: (item["name"].casefold(), item.get("api") or "", item["id"]))


def _get(http: httpx.Client, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
    try:
        response = http.get(url, headers=headers)
    except httpx.HTTPError as error:
        raise RefreshError(f"{url}: {error}") from None
    if response.status_code != 200:
        raise RefreshError(f"{url}: HTTP {response.status_code}")
    return response


def source_text(commit: str, ref: str, counts: dict[str, int], now: datetime) -> str:
    rows = "\n".join(f"| `{copied.target.name}` | `{copied.upstream}` | {counts[copied.target.name]} |"
                     for copied in COPIES)
    read = f"read on {now:%Y-%m-%d}" if ref == commit else f"`{ref}` on {now:%Y-%m-%d}"
    return f"""# Source of the tier model

Copied from [{REPOSITORY}](https://github.com/{REPOSITORY}) (Thomas Naunheim, MIT licence: `LICENSE` here), commit
[`{commit}`](https://github.com/{REPOSITORY}/tree/{commit}) ({read}), by
`wiaudit tiers refresh`. Do not edit the JSON files by hand: refresh them.

| file here | upstream file | entries |
|---|---|---|
{rows}

Each entry keeps only `id` (the app role id, or the role definition / role template id, as upstream has it),
`name`, `tier` (upstream's `EAMTierLevelTagValue`: 0 control plane, 1 management plane, 2 user access; `null`
where upstream leaves the item unclassified) and, for app roles, `api` (the appId of the API that defines it).
Entra roles that can add credentials or owners to applications or service principals keep those actions in
`appControl` (the control paths to tier 0 read them). Upstream's other per-action detail, descriptions and
categories are left out.
"""
