"""The privileged permissions and directory roles, as data users can extend (privileged.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

PRIVILEGED_FILE = Path(__file__).with_name("privileged.yaml")


@dataclass(frozen=True)
class PrivilegedDefinitions:
    application_permissions: frozenset[str]
    directory_roles: dict[str, str]  # role template id -> display name


@cache
def privileged_definitions() -> PrivilegedDefinitions:
    document = yaml.safe_load(PRIVILEGED_FILE.read_text(encoding="utf-8"))
    return PrivilegedDefinitions(frozenset(document["applicationPermissions"]), dict(document["directoryRoles"]))
