"""The templates type-check against Azure's and Microsoft Graph's Bicep type definitions (tests/bicep_types.py,
data in infra/types/), and the check catches what a Bicep compiler would: a misspelt, read-only or missing
property, a value outside an enum, a wrong scope, an unknown API version. Mutations run on copies in a temp dir."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from bicep_types import TYPES, resource_types, type_problems
from infra_helpers import INFRA, bicep_files, parse_file

BICEP_FILES = bicep_files()


def problems_of(path: Path) -> list[str]:
    return type_problems(parse_file(path), path.name, path.read_text())


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_every_template_type_checks(path):
    assert problems_of(path) == []


def test_the_type_data_is_exactly_what_the_templates_use_with_licence_and_source():
    spec = importlib.util.spec_from_file_location("refresh", TYPES / "refresh.py")
    refresh = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(refresh)  # type: ignore[union-attr]
    used = {f"{kind}@{version}".lower() for kind, version in refresh.used_types()}
    assert used == set(resource_types()), "run infra/types/refresh.py (see its docstring)"
    sources = (TYPES / "SOURCES.md").read_text()
    assert re.search(r"Azure/bicep-types-az at commit `[0-9a-f]{40}`", sources)
    assert re.search(r"microsoftgraph/msgraph-bicep-types at commit `[0-9a-f]{40}`", sources)
    for licence in ("LICENSE.bicep-types-az", "LICENSE.msgraph-bicep-types"):
        assert "MIT License" in (TYPES / licence).read_text()


def mutated(tmp_path: Path, relative: str, old: str, new: str) -> list[str]:
    original = (INFRA / relative).read_text()
    assert original.count(old) == 1, f"{relative}: the text to mutate is not there once: {old!r}"
    copy = tmp_path / Path(relative).name
    copy.write_text(original.replace(old, new))
    return problems_of(copy)


def test_a_misspelt_property_is_caught(tmp_path):
    problems = mutated(tmp_path, "modules/function-app.bicep", "    httpsOnly: true\n", "    httpsOnyl: true\n")
    assert len(problems) == 1 and "properties.httpsOnyl is not a property of" in problems[0]
    assert "httpsOnly" in problems[0]  # names what it has


def test_a_misspelt_nested_property_is_caught(tmp_path):
    problems = mutated(tmp_path, "modules/storage.bicep", "      requireInfrastructureEncryption: true\n",
                       "      requireInfrastuctureEncryption: true\n")
    assert problems == [problems[0]] and "properties.encryption.requireInfrastuctureEncryption" in problems[0]


def test_a_read_only_property_is_caught(tmp_path):
    problems = mutated(tmp_path, "modules/storage.bicep", "    accessTier: 'Hot'\n",
                       "    accessTier: 'Hot'\n    primaryEndpoints: {}\n")
    assert len(problems) == 1 and "properties.primaryEndpoints is read-only" in problems[0]


def test_a_missing_required_property_is_caught(tmp_path):
    problems = mutated(tmp_path, "modules/keyvault.bicep", "    principalId: functionPrincipalId\n", "")
    assert len(problems) == 1 and "properties.principalId is required" in problems[0]


def test_a_missing_required_graph_property_and_a_misspelt_one_are_caught(tmp_path):
    problems = mutated(tmp_path, "modules/graph-permissions.bicep", "  appRoleId: applicationReadAllRoleId\n",
                       "  appRoleID: applicationReadAllRoleId\n")
    assert len(problems) == 2
    assert any("appRoleID is not a property" in problem for problem in problems)
    assert any("appRoleId is required" in problem for problem in problems)


def test_a_value_outside_a_closed_enum_is_caught(tmp_path):
    problems = mutated(tmp_path, "modules/keyvault.bicep", "      name: 'standard'\n", "      name: 'standrad'\n")
    assert problems == ["keyvault.bicep: resource vault (Microsoft.KeyVault/vaults@2023-07-01): properties.sku.name is "
                        "'standrad', not one of 'standard', 'premium'"]
    # An open enum (known values, any string accepted, as Azure's `kind`) takes anything.
    assert mutated(tmp_path, "modules/storage.bicep", "  kind: 'StorageV2'\n", "  kind: 'StorageV3'\n") == []


def test_a_wrong_scope_and_an_unknown_api_version_are_caught(tmp_path):
    problems = mutated(tmp_path, "modules/storage.bicep", "// Storage for",
                       "targetScope = 'subscription'\n// Storage for")
    assert any("deployed at subscription scope, but the type allows only resourceGroup" in p for p in problems)
    problems = mutated(tmp_path, "modules/identity.bicep", "@2023-01-31'", "@2099-01-01'")
    assert len(problems) == 1 and "no such resource type and API version" in problems[0]


def test_an_unexplained_property_outside_the_type_data_is_caught(tmp_path):
    """`location` on the publishing-credential policies passes only with the compiler's own suppression line."""
    suppression = ("  // Azure wants a location here (it rejects the policy without one); the Bicep type data "
                   "lacks it.\n  #disable-next-line BCP187\n")
    problems = mutated(tmp_path, "modules/function-app.bicep", suppression, "")
    assert len(problems) == 1 and "ftpPolicy" in problems[0] and "location is not a property" in problems[0]
