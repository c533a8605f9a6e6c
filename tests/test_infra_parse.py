"""Every Bicep file under infra/ parses (no Bicep compiler can run here; pycep-parser can).

The Microsoft Graph module uses `extension microsoftGraphV1`. pycep-parser 0.7.1 reads it, so it
is parsed like every other file; it also gets a textual check that does not depend on any
parser (checkov's older pycep cannot read it, see test_infra_security.py), asserting the
extension line, the Graph resource types and exactly the two app roles.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from infra_helpers import (
    GRAPH_APP_ID,
    GRAPH_APP_ROLES,
    GRAPH_MODULE,
    INFRA,
    MAIN,
    bicep_files,
    declared,
    is_conditional,
    parse_file,
    parse_text,
    resolve_strings,
)

BICEP_FILES = bicep_files()


def test_infra_has_the_expected_templates():
    names = {path.relative_to(INFRA).as_posix() for path in BICEP_FILES}
    assert {"main.bicep", "entra-diagnostics.bicep", "modules/graph-permissions.bicep"} <= names
    assert len([n for n in names if n.startswith("modules/")]) >= 5, "one module per concern under modules/"


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: p.relative_to(INFRA).as_posix())
def test_bicep_file_parses(path: Path):
    doc = parse_file(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def test_a_broken_file_does_not_parse():
    broken = MAIN.read_text().replace(
        "resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {",
        "resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {{",
        1,
    )
    assert broken != MAIN.read_text()
    with pytest.raises(Exception):  # noqa: B017 - lark raises several error types
        parse_text(broken)


def test_every_local_module_reference_exists():
    for path in BICEP_FILES:
        for name, module in (parse_file(path).get("modules") or {}).items():
            if module.get("type") == "local":
                target = (path.parent / module["detail"]["path"]).resolve()
                assert target.is_file(), f"{path.name}: module {name} points at missing {target}"


def test_main_is_subscription_scope_and_entra_diagnostics_tenant_scope():
    assert parse_file(MAIN)["globals"]["scope"]["value"] == "subscription"
    assert parse_file(INFRA / "entra-diagnostics.bicep")["globals"]["scope"]["value"] == "tenant"


def test_main_outputs_what_azd_reads():
    outputs = set(parse_file(MAIN)["outputs"])
    assert {
        "AZURE_LOCATION",
        "AZURE_TENANT_ID",
        "AZURE_RESOURCE_GROUP",
        "SERVICE_API_NAME",
        "AZURE_FUNCTION_APP_NAME",
    } <= outputs


def test_parameters_file_matches_main_parameters():
    params = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared_params = parse_file(MAIN)["parameters"]
    unknown = sorted(set(params) - set(declared_params))
    assert not unknown, f"main.parameters.json sets parameters main.bicep does not declare: {unknown}"
    required = {name for name, p in declared_params.items() if "default" not in p}
    assert required <= set(params), f"required parameters missing: {sorted(required - set(params))}"
    assert params["environmentName"]["value"] == "${AZURE_ENV_NAME}"
    assert params["location"]["value"] == "${AZURE_LOCATION}"
    assert params["principalId"]["value"] == "${AZURE_PRINCIPAL_ID}"


def test_bicepconfig_declares_the_graph_extension():
    config = json.loads((INFRA / "bicepconfig.json").read_text())
    ref = config["extensions"]["microsoftGraphV1"]
    assert re.fullmatch(r"br:mcr\.microsoft\.com/bicep/extensions/microsoftgraph/v1\.0:\d+\.\d+\.\d+(-\w+)?", ref)


def test_azure_yaml_declares_the_api_service():
    text = (INFRA.parent / "azure.yaml").read_text()
    # No YAML parser in the dev requirements; the file is small and flat enough for regexes.
    assert re.search(r"^services:\n  api:\n", text, re.M)
    for line in ("project: .", "language: python", "host: function"):
        assert re.search(rf"^    {re.escape(line)}$", text, re.M), line


# --- the Graph module: textual check, independent of any Bicep parser ---------------------------


def graph_module_problems(text: str) -> list[str]:
    problems = []
    code = re.sub(r"//[^\n]*", "", text)
    if not re.search(r"^extension microsoftGraphV1\s*$", code, re.M):
        problems.append("missing the `extension microsoftGraphV1` line")
    if not re.search(r"'Microsoft\.Graph/servicePrincipals@v1\.0'\s+existing", code):
        problems.append("missing the existing Microsoft.Graph/servicePrincipals@v1.0 reference")
    if GRAPH_APP_ID not in code:
        problems.append(f"missing the Microsoft Graph appId {GRAPH_APP_ID}")
    assignments = re.findall(r"'Microsoft\.Graph/appRoleAssignedTo@v1\.0'", code)
    if len(assignments) != len(GRAPH_APP_ROLES):
        problems.append(
            f"expected {len(GRAPH_APP_ROLES)} Microsoft.Graph/appRoleAssignedTo@v1.0 resources, "
            f"found {len(assignments)}"
        )
    guids = set(re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", code)) - {GRAPH_APP_ID}
    if guids != set(GRAPH_APP_ROLES):
        problems.append(f"app role ids {sorted(guids)} differ from {sorted(GRAPH_APP_ROLES)}")
    if not re.search(r"appRoleAssignedTo@v1\.0'\s*=\s*if\s*\(", code):
        problems.append("Mail.Send must be conditional (only when email is enabled)")
    return problems


def test_graph_module_textual_check():
    assert graph_module_problems(GRAPH_MODULE.read_text()) == []


def test_graph_module_textual_check_catches_an_extra_role():
    text = GRAPH_MODULE.read_text().replace(
        "var mailSendRoleId = 'b633e1c5-b582-4048-a93e-9f11b44c7e96'",
        "var mailSendRoleId = '19dbc75e-c2e2-444c-a770-ec69d8559fc7'",
    )  # Directory.ReadWrite.All
    assert any("app role ids" in p for p in graph_module_problems(text))


def test_graph_module_parsed_roles():
    doc = parse_file(GRAPH_MODULE)
    assert "microsoftGraphV1" in (doc.get("extensions") or {})
    roles = {}
    for name, entry, body in declared(doc):
        assert entry["type"] == "Microsoft.Graph/appRoleAssignedTo", name
        [role_id] = {s for s in resolve_strings(body["appRoleId"], doc) if s in GRAPH_APP_ROLES}
        roles[GRAPH_APP_ROLES[role_id]] = is_conditional(entry["config"])
    assert roles == {"Application.Read.All": False, "RoleManagement.Read.Directory": False, "Mail.Send": True}


def test_location_is_limited_to_flex_consumption_regions_and_the_documented_one_is_among_them():
    decorators = parse_file(MAIN)["parameters"]["location"]["decorators"]
    [allowed] = [decorator["argument"] for decorator in decorators if decorator["type"] == "allowed"]
    assert len(allowed) == len(set(allowed)) >= 20 and all(re.fullmatch(r"[a-z0-9]+", region) for region in allowed)
    assert "eastus2euap" not in allowed  # a canary region, not for customers
    documented = set(re.findall(r"AZURE_LOCATION (\w+)|--location (\w+)", (INFRA.parent / "docs" / "deploy.md")
                                .read_text()))
    assert documented and {region for pair in documented for region in pair if region} <= set(allowed)
