"""Security properties of infra/, asserted on the parsed templates, plus a checkov scan.

Each property check also runs on a deliberately broken copy, so a check that can no longer fail
is noticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from infra_helpers import (
    FUNCTION_APP,
    GRAPH_MODULE,
    INFRA,
    KNOWN_ROLES,
    MAIN,
    REPO,
    bicep_files,
    declared,
    key_material_problems,
    parse_file,
    parse_text,
    role_assignment_problems,
    role_assignments,
    site_problems,
    storage_problems,
)

BICEP_FILES = bicep_files()
MODULES = INFRA / "modules"


def _all(check) -> list[str]:
    return [problem for path in BICEP_FILES for problem in check(parse_file(path), path.name)]


# --- no keys, no shared-key auth ---------------------------------------------------------------


def test_no_storage_keys_or_sas_anywhere():
    assert [p for path in BICEP_FILES for p in key_material_problems(path)] == []


def test_key_check_catches_list_keys():
    text = FUNCTION_APP.read_text().replace(
        "AzureWebJobsStorage__credential: 'managedidentity'",
        "AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountKey=${storage.listKeys().keys[0].value}'",
    )
    problems = key_material_problems(FUNCTION_APP, text)
    assert any("list*()" in p for p in problems) and any("AccountKey" in p for p in problems)


def test_storage_accounts_refuse_shared_keys():
    assert _all(storage_problems) == []
    storage = parse_file(MODULES / "storage.bicep")
    assert any(entry["type"] == "Microsoft.Storage/storageAccounts" for _n, entry, _b in declared(storage))


def test_storage_check_catches_shared_key_access():
    text = (MODULES / "storage.bicep").read_text().replace("allowSharedKeyAccess: false", "allowSharedKeyAccess: true")
    assert storage_problems(parse_text(text), "storage.bicep")


def test_host_storage_is_identity_based():
    doc = parse_file(FUNCTION_APP)
    host = doc["variables"]["hostSettings"]["value"]
    assert host["AzureWebJobsStorage__credential"] == "managedidentity"
    assert host["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert "AzureWebJobsStorage" not in host, "no connection-string host storage"
    [site] = [body for _n, entry, body in declared(doc) if entry["type"] == "Microsoft.Web/sites"]
    storage = site["properties"]["functionAppConfig"]["deployment"]["storage"]
    assert storage["authentication"]["type"] == "UserAssignedIdentity"
    assert site["properties"]["functionAppConfig"]["runtime"] == {"name": "python", "version": "3.11"}
    [plan] = [body for _n, entry, body in declared(doc) if entry["type"] == "Microsoft.Web/serverfarms"]
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}


# --- the site ----------------------------------------------------------------------------------


def test_function_app_is_https_only_and_tls12():
    assert _all(site_problems) == []
    assert any(entry["type"] == "Microsoft.Web/sites" for _n, entry, _b in declared(parse_file(FUNCTION_APP)))


def test_site_check_catches_http():
    text = FUNCTION_APP.read_text().replace("httpsOnly: true", "httpsOnly: false")
    assert site_problems(parse_text(text), "function-app.bicep") == [
        "function-app.bicep: site functionApp: httpsOnly must be true"
    ]


def test_application_insights_and_key_vault_disable_local_auth():
    [component] = [
        body
        for _n, entry, body in declared(parse_file(MODULES / "monitoring.bicep"))
        if entry["type"] == "Microsoft.Insights/components"
    ]
    assert component["properties"]["DisableLocalAuth"] is True
    keyvault = parse_file(MODULES / "keyvault.bicep")
    [vault] = [body for _n, entry, body in declared(keyvault) if entry["type"] == "Microsoft.KeyVault/vaults"]
    props = vault["properties"]
    assert (props["enableRbacAuthorization"], props["enableSoftDelete"]) == (True, True)
    # Purge protection is on unless the deployer turns it off (Azure refuses `false`, so off is null).
    assert props["enablePurgeProtection"] == {"operator": {"type": "conditional", "operands": {
        "condition": "purgeProtection", "true_value": True, "false_value": None}}}
    assert keyvault["parameters"]["purgeProtection"]["default"] is True
    assert parse_file(MAIN)["parameters"]["keyVaultPurgeProtection"]["default"] is True
    assert "accessPolicies" not in props


def secure_parameter_problems(doc: dict, where: str) -> list[str]:
    problems = []
    params = doc.get("parameters") or {}
    secure = {name for name, p in params.items() if any(d.get("type") == "secure" for d in p.get("decorators", []))}
    for name in params:
        if re.search(r"webhook(url)?$|password|secret$|key$", name, re.I) and name not in secure:
            problems.append(f"{where}: parameter {name} looks secret but is not @secure()")
    for out_name, output in (doc.get("outputs") or {}).items():
        text = json.dumps(output["value"])
        # The Bicep linter (outputs-should-not-contain-secrets) rejects any mention, even empty(x).
        leaked = sorted(name for name in secure if re.search(rf"\b{re.escape(name)}\b", text))
        if leaked:
            problems.append(f"{where}: output {out_name} exposes secure parameter(s) {leaked}")
    return problems


def test_secure_parameters_are_secure_and_never_output():
    assert _all(secure_parameter_problems) == []


def test_secure_parameter_check_catches_a_leak():
    text = (MODULES / "keyvault.bicep").read_text() + "output leak bool = !empty(teamsWebhookUrl)\n"
    assert secure_parameter_problems(parse_text(text), "kv") == [
        "kv: output leak exposes secure parameter(s) ['teamsWebhookUrl']"
    ]
    text = (MODULES / "keyvault.bicep").read_text().replace("@secure()\nparam teamsWebhookUrl", "param teamsWebhookUrl")
    assert secure_parameter_problems(parse_text(text), "kv") == [
        "kv: parameter teamsWebhookUrl looks secret but is not @secure()"
    ]


# --- role assignments: known built-in roles, narrowest scope, no more ------------------------------


def test_role_assignments_use_known_roles_at_resource_scope():
    assert _all(role_assignment_problems) == []


def test_the_identity_gets_exactly_these_roles():
    granted = set().union(*(role_assignments(parse_file(path)) for path in BICEP_FILES))
    assert granted == {
        ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
        ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
        ("Storage Table Data Reader", "Microsoft.Storage/storageAccounts"),  # opt-in, for a developer
        ("Monitoring Metrics Publisher", "Microsoft.Insights/components"),
        ("Monitoring Metrics Publisher", "Microsoft.Insights/dataCollectionRules"),  # findings into Log Analytics
        ("Log Analytics Reader", "Microsoft.OperationalInsights/workspaces"),
        ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
    }


def test_role_check_catches_resource_group_scope_and_unknown_roles():
    text = (MODULES / "keyvault.bicep").read_text()
    unscoped = text.replace("  scope: vault\n", "", 1)
    assert any("scope must be" in p for p in role_assignment_problems(parse_text(unscoped), "kv"))
    owner = text.replace(
        "var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'",
        "var keyVaultSecretsUser = '8e3af657-a8ff-443c-a75c-2fe8c4bcb635'",
    )  # Owner
    assert any("not in the table" in p for p in role_assignment_problems(parse_text(owner), "kv"))
    wrong_scope = (
        (MODULES / "storage.bicep")
        .read_text()
        .replace(
            "var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'",
            "var storageTableDataContributor = '4633458b-17de-408a-b874-0445c86b69e6'",
        )
    )  # a vault role
    assert any(
        "must be scoped to a Microsoft.KeyVault/vaults" in p
        for p in role_assignment_problems(parse_text(wrong_scope), "storage")
    )


def test_role_table_has_no_broad_roles():
    broad = {
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
    }  # Owner/Contrib/Reader/UAA
    assert not broad & set(KNOWN_ROLES)


def test_workspace_access_is_deployed_at_the_workspace_scope():
    module = parse_file(MAIN)["modules"]["workspaceAccess"]["config"]
    scope = module["scope"]["function"]
    assert scope["type"] == "resource_group"
    assert scope["parameters"] == {
        "subscription_id": "workspaceSubscriptionId",
        "resource_group_name": "workspaceResourceGroupName",
    }


# --- checkov -----------------------------------------------------------------------------------

# checkov's own pycep-parser (0.5.1) cannot read `extension`: these Graph templates are checked in
# test_infra_parse.py and test_infra_types.py instead. Any other parse error fails the scan.
CHECKOV_UNPARSABLE = {GRAPH_MODULE.relative_to(INFRA).as_posix(), "entra-app.bicep"}
SKIP_COMMENT = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def _checkov() -> str | None:
    configured = os.environ.get("CHECKOV")
    candidates = [configured] if configured else [str(REPO / ".venv-checkov" / "bin" / "checkov")]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def run_checkov(directory: Path) -> dict:
    checkov = _checkov()
    if checkov is None:
        pytest.fail("checkov is not installed: run `make test` (it builds .venv-checkov) "
                    "or set CHECKOV=/path/to/checkov")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        [
            checkov,
            "--directory",
            str(directory),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
            "--compact",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"checkov failed to run (exit {result.returncode}):\n{result.stderr[-3000:]}")
    report = json.loads(result.stdout)
    if isinstance(report, list):
        [report] = [r for r in report if r.get("check_type") == "bicep"]
    return report


def checkov_problems(report: dict, directory: Path) -> list[str]:
    results = report.get("results") or {}
    problems = [
        f"{c['check_id']} {c['file_path']} {c['resource']}: {c['check_name']}" for c in results.get("failed_checks", [])
    ]
    for path in results.get("parsing_errors", []):
        relative = Path(path).resolve().relative_to(directory.resolve()).as_posix()
        if relative not in CHECKOV_UNPARSABLE:
            problems.append(f"checkov could not parse {relative} (its checks did not run)")
    if report.get("summary", {}).get("resource_count", 0) == 0:
        problems.append("checkov scanned no resources")
    return problems


@pytest.mark.slow
def test_checkov_scan_is_clean():
    report = run_checkov(INFRA)
    assert checkov_problems(report, INFRA) == []
    assert report["summary"]["passed"] > 0


@pytest.mark.slow
def test_checkov_scan_fails_without_a_skip(tmp_path: Path):
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    storage = copy / "modules" / "storage.bicep"
    storage.write_text(
        "\n".join(line for line in storage.read_text().splitlines() if "checkov:skip=CKV_AZURE_206" not in line) + "\n"
    )
    problems = checkov_problems(run_checkov(copy), copy)
    assert any(p.startswith("CKV_AZURE_206 ") for p in problems), problems


def test_every_checkov_skip_gives_a_reason():
    skips = []
    for path in BICEP_FILES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "checkov:" in line:
                match = SKIP_COMMENT.search(line)
                assert match, f"{path.name}:{number}: malformed checkov comment: {line.strip()}"
                reason = (match.group(2) or "").strip()
                assert len(reason) >= 30, f"{path.name}:{number}: {match.group(1)} is skipped without a real reason"
                skips.append(match.group(1))
    assert skips, "expected the documented skips (see docs/deploy.md)"


def test_graph_grants_are_a_separate_step_and_mail_send_needs_an_explicit_opt_in():
    assert not [module for module in parse_file(MAIN)["modules"].values()  # never in the main deployment
                if "graph" in module["detail"].get("path", "")]
    assert parse_file(GRAPH_MODULE)["parameters"]["grantMailSend"]["default"] is False
    script = (INFRA / "scripts" / "grant-graph-permissions.sh").read_text()
    assert "grant_mail_send=${WIAUDIT_GRANT_MAIL_SEND_IN_ENTRA:-false}" in script
    assert "modules/graph-permissions.bicep" in script


def test_the_optional_rbac_read_role_only_reads_role_assignments_and_definitions():
    doc = parse_file(MODULES / "azure-rbac-read.bicep")
    (role,) = [body for _name, entry, body in declared(doc)
               if entry["type"] == "Microsoft.Authorization/roleDefinitions"]
    (permission,) = role["properties"]["permissions"]
    assert sorted(permission["actions"]) == ["Microsoft.Authorization/roleAssignments/read",
                                             "Microsoft.Authorization/roleDefinitions/read"]
    assert role_assignment_problems(doc, "rbac") == []
    widened = parse_text((MODULES / "azure-rbac-read.bicep").read_text().replace(
        "'Microsoft.Authorization/roleDefinitions/read'", "'Microsoft.Authorization/roleAssignments/write'"))
    assert role_assignment_problems(widened, "rbac") == [
        "rbac: role assignment assignment: custom role rbacReader may do "
        "Microsoft.Authorization/roleAssignments/write, not only read"]
    main = (INFRA / "main.bicep").read_text()
    assert "param grantAzureRbacRead bool = false" in main and "if (grantAzureRbacRead)" in main
