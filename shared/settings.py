"""Every app setting the product reads, declared once and validated at start-up.

The Bicep templates set these names and a test keeps both sides in step, so add a
setting here first, then in infra/.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.links import parse_base_url
from shared.timespan import parse_timespan


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it and says what is expected."""


@dataclass(frozen=True)
class Setting:
    name: str
    description: str
    default: str | None = None
    parse: Callable[[str], Any] = str
    secret: bool = False  # in Azure it must be a Key Vault reference, never a plain value
    azure: bool = True  # set by infra/ in Azure (False: local development only)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError("must be a positive whole number")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be zero or a positive whole number")
    return value


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"must be a JSON object ({error.msg})") from None


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value not in ("true", "false"):
        raise ValueError("must be true or false")
    return value == "true"


def _days_list(text: str) -> tuple[int, ...]:
    """`30,14,7,1`: distinct positive whole numbers of days, largest first."""
    try:
        days = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise ValueError("must be comma-separated whole numbers of days, such as 30,14,7,1") from None
    if not days or min(days) <= 0:
        raise ValueError("must be comma-separated positive whole numbers of days, such as 30,14,7,1")
    return tuple(sorted(days, reverse=True))


def _domains(text: str) -> tuple[str, ...]:
    """`contoso.com, fabrikam.com`: mail domains, lower case."""
    domains = tuple(dict.fromkeys(part.strip().lower().lstrip("@") for part in text.split(",") if part.strip()))
    bad = [domain for domain in domains if "." not in domain or not all(
        label and label.replace("-", "").isalnum() for label in domain.split("."))]
    if bad:
        raise ValueError(f"{', '.join(bad)} is not a mail domain such as contoso.com")
    return domains


def _json_object(text: str) -> dict:
    value = _parse_json(text)
    if not isinstance(value, dict) or not all(isinstance(inner, dict) for inner in value.values()):
        raise ValueError("must be a JSON object of objects: {rule: {parameter: value}}")
    return value


def _names(text: str) -> tuple[str, ...]:
    """`a, b` or `["a", "b"]` (for a name with a comma): distinct names, in order."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"must be a JSON list of strings ({error.msg})") from None
        if not all(isinstance(item, str) for item in items):
            raise ValueError('must be a JSON list of strings: ["<id or name>", ...]')
    else:
        items = text.split(",")
    return tuple(dict.fromkeys(item.strip() for item in items if item.strip()))


def _positive_timespan(text: str) -> timedelta:
    value = parse_timespan(text)
    if value <= timedelta(0):
        raise ValueError("must be a positive timespan such as 90s or 2m")
    return value


def _json_string_map(text: str) -> dict[str, str]:
    value = _parse_json(text)
    if not isinstance(value, dict) or not all(isinstance(inner, str) and inner for inner in value.values()):
        raise ValueError('must be a JSON object of strings: {"<name or resource id>": "<service principal id>"}')
    return value


def _dcr_immutable_id(text: str) -> str:
    value = text.strip()
    if not re.fullmatch(r"dcr-[0-9a-f]{32}", value):
        raise ValueError("must be a data collection rule's immutable id: dcr- and 32 hexadecimal digits")
    return value


def _table_map(text: str) -> dict[str, str]:
    value = _parse_json(text)
    if not isinstance(value, dict) or not all(isinstance(inner, str) and inner for inner in value.values()):
        raise ValueError('must be a JSON object of table names: {"<Log Analytics table>": "<table in the database>"}')
    return value
_SUBSCRIPTION_SCOPE = re.compile(r"/subscriptions/([0-9a-fA-F-]{36})", re.I)
_MANAGEMENT_GROUP_SCOPE = re.compile(r"/providers/Microsoft\.Management/managementGroups/([^/]+)", re.I)


def _azure_scopes(text: str) -> tuple[list[str], list[str]]:
    """(subscription ids, management group names) from comma-separated resource ids."""
    subscriptions: list[str] = []
    groups: list[str] = []
    for item in (part.strip().rstrip("/") for part in text.split(",")):
        if match := _SUBSCRIPTION_SCOPE.fullmatch(item):
            subscriptions.append(match.group(1).lower())
        elif match := _MANAGEMENT_GROUP_SCOPE.fullmatch(item):
            groups.append(match.group(1))
        elif item:
            raise ValueError(f"{item!r} is neither /subscriptions/<id> nor "
                             "/providers/Microsoft.Management/managementGroups/<name>")
    return subscriptions, groups


SETTINGS: tuple[Setting, ...] = (
    Setting("AUDIT_SCHEDULE", "NCRONTAB schedule of the audit timer", "0 0 6 * * *"),
    Setting("LOG_ANALYTICS_WORKSPACE_ID", "Workspace (customer) id of the Log Analytics workspace to audit"),
    Setting("LOG_ANALYTICS_ENDPOINT", "Log Analytics query endpoint, for sovereign clouds",
            "https://api.loganalytics.io"),
    Setting("LOG_ANALYTICS_TIMEOUT_SECONDS", "Server timeout of one Log Analytics query", "600", _positive_int),
    Setting("KUSTO_CLUSTER_URL", "Query URI of an Azure Data Explorer cluster or Fabric Eventhouse whose database "
            "holds the logs; set, the audit reads the logs there instead of from Log Analytics"),
    Setting("KUSTO_DATABASE", "Database of that cluster that holds the logs"),
    Setting("KUSTO_TABLES", 'Tables of that database stored under other names than in Log Analytics, as JSON: '
            '{"AADServicePrincipalSignInLogs": "SpSignIns"}', "{}", _table_map),
    Setting("KUSTO_TIMEOUT_SECONDS", "Server timeout of one query on that cluster (at most 3600)", "600",
            _positive_int),
    Setting("GRAPH_ENDPOINT", "Microsoft Graph endpoint, for sovereign clouds", "https://graph.microsoft.com"),
    Setting("AZURE_RBAC_SCOPES", "Subscriptions and management groups whose Azure role assignments the posture "
            "checks read through Azure Resource Graph, comma-separated resource ids (/subscriptions/<id>, "
            "/providers/Microsoft.Management/managementGroups/<name>); unset: Azure roles are not read",
            parse=_azure_scopes),
    Setting("AZURE_RESOURCE_MANAGER_ENDPOINT", "Azure Resource Manager endpoint (Resource Graph), for sovereign "
            "clouds", "https://management.azure.com"),
    Setting("AZURE_CLIENT_ID", "Client id of the Function's user-assigned managed identity"),
    Setting("FINDINGS_TABLE_ENDPOINT", "Table service endpoint that stores findings, runs and checkpoints"),
    Setting("FINDINGS_CONNECTION_STRING", "Table Storage connection string (local development, Azurite)",
            azure=False),
    Setting("INGESTION_DELAY_MINUTES", "How far behind now a window must end, for late log ingestion", "15",
            _non_negative_int),
    Setting("MAX_LOOKBACK_DAYS", "How far back a catch-up run goes at most", "7", _positive_int),
    Setting("TEAMS_WEBHOOK_URL", "Teams Workflows webhook that receives the daily digest", secret=True),
    Setting("MAIL_SENDER", "Mailbox (UPN or id) the digest email is sent from"),
    Setting("MAIL_TO", "Comma-separated recipients of the digest email"),
    Setting("PUBLIC_BASE_URL", "Absolute base URL of the HTTP API (e.g. https://<app>.azurewebsites.net), for the "
            "links to findings in the digest; unset: no such links", parse=parse_base_url),
    Setting("OWNER_NOTICES", "Whether owners get an email about their applications' expiring, expired and unused "
            "credentials (true or false)", "false", _switch),
    Setting("OWNER_NOTICE_DAYS", "Days before a credential's end at which its owners are told, comma-separated",
            "30,14,7,1", _days_list),
    Setting("OWNER_NOTICE_DOMAINS", "Mail domains owner notices may go to, comma-separated (unset: any)",
            parse=_domains),
    Setting("DETECTION_PARAMETERS", 'Overrides of detection and posture check parameters as JSON: '
            '{"<rule file name>": {"<parameter>": value}}, e.g. {"expiring_credentials": {"expiring_days": 45}}',
            "{}", _json_object),
    Setting("DISABLED_DETECTIONS", "Detections and posture checks the audit does not run, by id, file name or exact "
            'name, comma-separated or as a JSON list, e.g. microsoft_risky_service_principal (for a tenant without '
            "Workload Identities Premium, whose risk tables stay empty); the digest and the run record name them",
            parse=_names),
    Setting("FINDINGS_INGESTION_ENDPOINT", "Logs ingestion endpoint of the data collection rule that sends findings "
            "and their changes to the WorkloadIdentityFindings_CL table (unset: findings stay out of Log Analytics)",
            parse=parse_base_url),
    Setting("FINDINGS_DCR_IMMUTABLE_ID", "Immutable id (dcr-...) of that data collection rule",
            parse=_dcr_immutable_id),
    Setting("LOGIC_APP_LINK_INTERVAL", "Longest gap between a sign-in and the start of a Logic App run or action "
            "that `wiaudit trail` shows as probably linked", "2m", _positive_timespan, azure=False),
    Setting("LOGIC_APP_CONNECTIONS", "Service principal each Logic App API connection or workflow signs in as, for "
            'certain links in `wiaudit trail`, as JSON: {"<connection or workflow name or resource id>": '
            '"<service principal object id or app id>"}', "{}", _json_string_map, azure=False),
    Setting("SUPPRESSIONS_PATH", "Folder of suppression YAML files; default: suppressions/ in the project, which "
            "deploys with the app package", azure=False),
    Setting("WIAUDIT_HOME", "Folder of the local store, sample tenant and outbox (default: .wiaudit in the project)",
            azure=False),
    Setting("WIAUDIT_API_KEY", "API key the local HTTP API requires in the x-api-key header", secret=True,
            azure=False),
)

BY_NAME: dict[str, Setting] = {setting.name: setting for setting in SETTINGS}


def read_setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """The parsed value of one declared setting, its default, or None when unset and without default."""
    setting = BY_NAME[name]
    env = os.environ if environ is None else environ
    raw = env.get(name, "").strip() or setting.default
    if raw is None:
        return None
    try:
        return setting.parse(raw)
    except ValueError as error:
        raise SettingsError(f"setting {name}: {error} (got {raw!r}); it is the {setting.description}") from None


def require_setting(name: str, environ: Mapping[str, str] | None = None) -> Any:
    """Like read_setting, but a missing value is a SettingsError that says what to set."""
    value = read_setting(name, environ)
    if value is None:
        raise SettingsError(f"setting {name} is not set; it is the {BY_NAME[name].description}")
    return value


def check_settings(environ: Mapping[str, str] | None = None) -> None:
    """Parse every setting that is set, at start-up; one SettingsError lists every bad one."""
    problems = []
    for setting in SETTINGS:
        try:
            read_setting(setting.name, environ)
        except SettingsError as error:
            problems.append(str(error))
    if problems:
        raise SettingsError("; ".join(problems))
