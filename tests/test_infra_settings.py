"""infra/ sets exactly the app settings shared/settings.py declares for Azure, under the same names.

The registry (shared/settings.py) is the source of truth: a setting with azure=True must be set
by the Bicep templates, a local-only one (azure=False) must not, and a secret one only as a Key
Vault reference. The Functions host's own settings (identity-based AzureWebJobsStorage,
Entra-authenticated Application Insights) come on top.
"""

from __future__ import annotations

import re

from infra_helpers import (
    FUNCTION_APP,
    HOST_SETTINGS,
    INFRA,
    KEY_VAULT_REFERENCE,
    MAIN,
    all_app_settings,
    app_settings,
    parse_file,
    parse_text,
    secret_setting_problems,
    settings_problems,
)

from shared.settings import SETTINGS

AZURE_SETTINGS = {s.name for s in SETTINGS if s.azure}
LOCAL_ONLY = {s.name for s in SETTINGS if not s.azure}
SECRETS = {s.name for s in SETTINGS if s.secret}


def test_bicep_sets_exactly_the_azure_settings():
    assert settings_problems(set(all_app_settings()), AZURE_SETTINGS) == []


def test_local_only_settings_are_not_deployed():
    assert LOCAL_ONLY, "the registry has local-only settings (e.g. FINDINGS_CONNECTION_STRING)"
    assert not LOCAL_ONLY & set(all_app_settings())


def test_secret_settings_are_key_vault_references():
    settings = all_app_settings()
    assert set(settings) >= SECRETS & AZURE_SETTINGS
    assert secret_setting_problems(settings, SECRETS) == []


def test_no_connection_string_or_key_in_any_setting_value():
    for name, value in all_app_settings().items():
        text = str(value)
        assert not re.search(r"AccountKey=|SharedAccessSignature=|listKeys", text, re.I), name
        if name == "APPLICATIONINSIGHTS_AUTHENTICATION_STRING":
            assert value == "ClientId=${identityClientId};Authorization=AAD"


def test_values_are_wired_to_the_right_sources():
    settings = app_settings(parse_file(FUNCTION_APP))
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["FINDINGS_TABLE_ENDPOINT"] == "storageTableEndpoint"
    assert settings["LOG_ANALYTICS_WORKSPACE_ID"] == "logAnalyticsWorkspaceId"
    params = parse_file(MAIN)["modules"]["functionApp"]["config"]["params"]
    assert _accessor(params["logAnalyticsWorkspaceId"]) == ["workspaceAccess", "outputs", "customerId"]
    assert _accessor(params["storageTableEndpoint"]) == ["storage", "outputs", "tableEndpoint"]
    assert _accessor(params["identityClientId"]) == ["identity", "outputs", "clientId"]
    workspace = parse_file(INFRA / "modules" / "workspace-access.bicep")
    assert workspace["resources"]["workspace"]["existing"] is True
    assert _accessor(workspace["outputs"]["customerId"]["value"]) == ["workspace", "properties", "customerId"]
    storage = parse_file(INFRA / "modules" / "storage.bicep")
    assert _accessor(storage["outputs"]["tableEndpoint"]["value"]) == [
        "storage",
        "properties",
        "primaryEndpoints",
        "table",
    ]


def _accessor(expr) -> list[str]:
    """a.b.c from pycep's nested property_accessor operators."""
    if isinstance(expr, str):
        return [expr]
    operands = expr["operator"]["operands"]
    return _accessor(operands["operand_1"]) + _accessor(operands["operand_2"])


def test_bicep_defaults_match_the_registry_defaults():
    params = parse_file(MAIN)["parameters"]
    compared = 0
    for setting in SETTINGS:
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), setting.name.lower())
        param = params.get(camel)
        if param is None or "default" not in param or setting.default is None:
            continue
        if param["default"] == "":  # empty: the app falls back to its own default
            continue
        compared += 1
        assert str(param["default"]) == setting.default, (
            f"main.bicep param {camel} defaults to {param['default']!r}, shared/settings.py {setting.name} "
            f"to {setting.default!r}"
        )
    assert compared >= 4


# --- the checks can fail ------------------------------------------------------------------------


def test_settings_check_names_what_is_missing_on_each_side():
    text = FUNCTION_APP.read_text()
    broken = text.replace("  MAIL_TO: mailTo\n", "  FINDINGS_CONNECTION_STRING: 'UseDevelopmentStorage=true'\n")
    assert broken != text
    problems = settings_problems(set(app_settings(parse_text(broken))), AZURE_SETTINGS)
    assert len(problems) == 2
    assert "not set by infra/" in problems[0] and "'MAIL_TO'" in problems[0]
    assert "local-only" in problems[1] and "'FINDINGS_CONNECTION_STRING'" in problems[1]


def test_secret_check_catches_a_plain_secret():
    text = FUNCTION_APP.read_text()
    broken = text.replace("'@Microsoft.KeyVault(SecretUri=${teamsWebhookSecretUri})'", "teamsWebhookSecretUri")
    assert broken != text
    settings = app_settings(parse_text(broken))
    assert secret_setting_problems(settings, SECRETS) == [
        "TEAMS_WEBHOOK_URL is a secret but its value is not a Key Vault reference: 'teamsWebhookSecretUri'"
    ]


def test_host_settings_are_present():
    assert set(app_settings(parse_file(FUNCTION_APP))) >= HOST_SETTINGS
    assert all(
        not str(v).startswith(KEY_VAULT_REFERENCE)
        for k, v in app_settings(parse_file(FUNCTION_APP)).items()
        if k not in SECRETS
    )
