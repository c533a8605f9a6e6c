"""Read the Bicep templates under infra/ as data, for the infra tests.

pycep-parser turns a .bicep file into nested dicts. Its conventions that matter here:
- a resource/module with `= if (cond) {...}` has config {"condition": ..., "config": {...}};
  a `[for x in xs: {...}]` loop has {"loop_type": {...}, "condition": ..., "config": {...}};
- identifiers (variables, parameters, symbolic names) and string literals are both plain str;
- function calls are {"function": {"type": ..., "parameters": {...}}}, operators
  {"operator": {"type": ..., "operands": {...}}}; interpolated strings stay raw ('a${b}c').

Each `*_problems` function returns human-readable problems (empty: all good), so the tests can
assert on the real templates and on deliberately broken copies alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "function-app.bicep"
GRAPH_MODULE = INFRA / "modules" / "graph-permissions.bicep"

# Built-in Azure roles the templates may assign, and the only resource type each may be scoped to
# (the narrowest scope that works: never a resource group or subscription).
KNOWN_ROLES: dict[str, tuple[str, str | tuple[str, ...]]] = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": ("Storage Blob Data Owner", "Microsoft.Storage/storageAccounts"),
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": ("Storage Table Data Contributor", "Microsoft.Storage/storageAccounts"),
    "76199698-9eea-4c19-bc75-cec21354c6b6": ("Storage Table Data Reader", "Microsoft.Storage/storageAccounts"),
    "3913510d-42f4-4e42-8a64-420c390055eb": (
        "Monitoring Metrics Publisher", ("Microsoft.Insights/components", "Microsoft.Insights/dataCollectionRules")),
    "73c42c96-874c-492b-b04d-ab87d138a893": ("Log Analytics Reader", "Microsoft.OperationalInsights/workspaces"),
    "4633458b-17de-408a-b874-0445c86b69e6": ("Key Vault Secrets User", "Microsoft.KeyVault/vaults"),
}

# Microsoft Graph application permissions (app role ids of the Microsoft Graph service principal).
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
GRAPH_APP_ROLES = {
    "9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30": "Application.Read.All",
    "483bed4a-2ad3-4361-a73b-c83ccdbdc53c": "RoleManagement.Read.Directory",
    "b633e1c5-b582-4048-a93e-9f11b44c7e96": "Mail.Send",
}

# App settings the Functions host itself reads (not in shared/settings.py).
HOST_SETTINGS = {
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

KEY_VAULT_REFERENCE = "@Microsoft.KeyVault("
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)


def bicep_files(root: Path = INFRA) -> list[Path]:
    return sorted(root.rglob("*.bicep"))


@cache
def _parser() -> Any:
    from pycep import BicepParser

    return BicepParser()


def parse_text(text: str) -> dict[str, Any]:
    """Parse Bicep source; raises (ValueError, lark errors) on anything pycep-parser rejects."""
    return _parser().parse(text=text)


@cache
def _parse_cached(path: str, mtime_ns: int) -> dict[str, Any]:
    return parse_text(Path(path).read_text())


def parse_file(path: Path) -> dict[str, Any]:
    return _parse_cached(str(path), path.stat().st_mtime_ns)


# --- walking the parsed tree -----------------------------------------------------------------


def unwrap(config: Any) -> Any:
    """The body of a resource/module/property, without `if (...)` and `for ... in` wrappers."""
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def is_conditional(config: Any) -> bool:
    return isinstance(config, dict) and config.get("condition") is not None


def resources(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(symbolic name, resource entry, unwrapped body) for every resource of a parsed file."""
    for name, entry in (doc.get("resources") or {}).items():
        yield name, entry, unwrap(entry["config"])


def declared(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Resources this file creates (not `existing` references)."""
    for name, entry, body in resources(doc):
        if not entry.get("existing"):
            yield name, entry, body


def leaves(node: Any) -> Iterator[Any]:
    """Every scalar in a parsed expression."""
    if isinstance(node, dict):
        for value in node.values():
            yield from leaves(value)
    elif isinstance(node, list):
        for value in node:
            yield from leaves(value)
    else:
        yield node


def resolve_strings(
    expr: Any, doc: dict[str, Any], bindings: dict[str, Any] | None = None, _seen: frozenset[str] = frozenset()
) -> set[str]:
    """Every string an expression can produce, following variables and loop variables."""
    bindings = bindings or {}
    out: set[str] = set()
    variables = doc.get("variables") or {}
    for leaf in leaves(expr):
        if not isinstance(leaf, str):
            continue
        if leaf in bindings and leaf not in _seen:
            out |= resolve_strings(bindings[leaf], doc, bindings, _seen | {leaf})
        elif leaf in variables and leaf not in _seen:
            out |= resolve_strings(variables[leaf]["value"], doc, bindings, _seen | {leaf})
        else:
            out.add(leaf)
    return out


def loop_bindings(entry_config: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """{item name: the array it iterates} for a `[for item in array: ...]` resource."""
    if isinstance(entry_config, dict) and isinstance(entry_config.get("loop_type"), dict):
        detail = entry_config["loop_type"].get("detail") or {}
        item, array = detail.get("item_name"), detail.get("array_name")
        if item and array:
            variables = doc.get("variables") or {}
            array_value = variables[array]["value"] if array in variables else array
            return {item: array_value}
    return {}


def object_entries(expr: Any, doc: dict[str, Any], _seen: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Keys -> values of every object literal an object expression can be built from.

    Follows variables and looks through union(...), conditionals and other calls, so
    `union(hostSettings, cond ? {} : {A: x})` yields hostSettings' keys and A.
    """
    variables = doc.get("variables") or {}
    if isinstance(expr, str):
        if expr in variables and expr not in _seen:
            return object_entries(variables[expr]["value"], doc, _seen | {expr})
        return {}
    if isinstance(expr, dict):
        if "function" in expr and isinstance(expr["function"], dict):
            found: dict[str, Any] = {}
            for arg in (expr["function"].get("parameters") or {}).values():
                found.update(object_entries(arg, doc, _seen))
            return found
        if "operator" in expr and isinstance(expr["operator"], dict):
            found = {}
            for operand in (expr["operator"].get("operands") or {}).values():
                found.update(object_entries(operand, doc, _seen))
            return found
        return dict(expr)
    return {}


# --- app settings ----------------------------------------------------------------------------


def app_settings(doc: dict[str, Any]) -> dict[str, Any]:
    """Name -> value expression of every app setting a parsed file sets.

    Both forms: a `Microsoft.Web/sites/config` resource named 'appsettings' and
    `siteConfig.appSettings` [{name, value}] on a `Microsoft.Web/sites` resource.
    """
    found: dict[str, Any] = {}
    for _name, entry, body in declared(doc):
        if entry["type"] == "Microsoft.Web/sites/config" and body.get("name") == "appsettings":
            found.update(object_entries(body.get("properties"), doc))
        if entry["type"] == "Microsoft.Web/sites":
            site_config = (body.get("properties") or {}).get("siteConfig") or {}
            for item in _array_items(site_config.get("appSettings"), doc):
                if isinstance(item, dict) and "name" in item:
                    found[item["name"]] = item.get("value")
    return found


def _array_items(expr: Any, doc: dict[str, Any]) -> list[Any]:
    variables = doc.get("variables") or {}
    if isinstance(expr, list):
        return expr
    if isinstance(expr, str) and expr in variables:
        return _array_items(variables[expr]["value"], doc)
    if isinstance(expr, dict):
        inner = expr.get("function") or expr.get("operator") or {}
        items: list[Any] = []
        for arg in (inner.get("parameters") or inner.get("operands") or {}).values():
            items.extend(_array_items(arg, doc))
        return items
    return []


def all_app_settings(paths: list[Path] | None = None) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for path in paths or bicep_files():
        settings.update(app_settings(parse_file(path)))
    return settings


def settings_problems(bicep_settings: set[str], azure_settings: set[str]) -> list[str]:
    """Compare the app settings infra sets with the registry's azure settings plus the host's."""
    expected = azure_settings | HOST_SETTINGS
    problems = []
    missing = sorted(expected - bicep_settings)
    extra = sorted(bicep_settings - expected)
    if missing:
        problems.append(
            f"declared in shared/settings.py (azure=True) or needed by the host, but not set by infra/: {missing}"
        )
    if extra:
        problems.append(
            f"set by infra/ but not an azure setting of shared/settings.py nor a host setting "
            f"(local-only settings must not be deployed): {extra}"
        )
    return problems


def secret_setting_problems(settings: dict[str, Any], secret_names: set[str]) -> list[str]:
    """Every secret setting must be a Key Vault reference, never a plain value."""
    problems = []
    for name in sorted(secret_names & settings.keys()):
        value = settings[name]
        if not (isinstance(value, str) and value.startswith(KEY_VAULT_REFERENCE)):
            problems.append(f"{name} is a secret but its value is not a Key Vault reference: {value!r}")
    return problems


# --- security properties ---------------------------------------------------------------------

_KEY_PATTERNS = [
    (re.compile(r"\blist(Keys|AccountSas|ServiceSas|ConnectionStrings)\s*\(", re.I), "a list*() key/SAS call"),
    (re.compile(r"AccountKey\s*=", re.I), "an AccountKey= connection string"),
    (re.compile(r"SharedAccessSignature|SharedAccessKey\s*=", re.I), "a SAS/shared access key"),
    (re.compile(r"InstrumentationKey\s*=\s*'", re.I), "a literal instrumentation key"),
]


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def key_material_problems(path: Path, text: str | None = None) -> list[str]:
    code = strip_comments(path.read_text() if text is None else text)
    return [f"{path.name}: {what}" for pattern, what in _KEY_PATTERNS if pattern.search(code)]


def storage_problems(doc: dict[str, Any], where: str) -> list[str]:
    problems = []
    for name, entry, body in declared(doc):
        if entry["type"] != "Microsoft.Storage/storageAccounts":
            continue
        props = body.get("properties") or {}
        expected = {
            "allowSharedKeyAccess": False,
            "allowBlobPublicAccess": False,
            "supportsHttpsTrafficOnly": True,
            "minimumTlsVersion": "TLS1_2",
            "defaultToOAuthAuthentication": True,
        }
        for key, value in expected.items():
            if props.get(key) != value:
                problems.append(f"{where}: storage account {name}: {key} must be {value!r}, is {props.get(key)!r}")
    return problems


def site_problems(doc: dict[str, Any], where: str) -> list[str]:
    problems = []
    for name, entry, body in declared(doc):
        if entry["type"] != "Microsoft.Web/sites":
            continue
        props = body.get("properties") or {}
        site_config = props.get("siteConfig") or {}
        checks = [
            (props.get("httpsOnly") is True, "httpsOnly must be true"),
            (site_config.get("minTlsVersion") == "1.2", "siteConfig.minTlsVersion must be '1.2'"),
            ("ftpsState" not in site_config, "siteConfig.ftpsState is unsupported on Flex Consumption"),
            ((body.get("identity") or {}).get("type") == "UserAssigned", "identity must be user-assigned"),
            (bool(props.get("keyVaultReferenceIdentity")), "keyVaultReferenceIdentity must name the identity"),
        ]
        problems += [f"{where}: site {name}: {message}" for ok, message in checks if not ok]
    return problems


def role_assignment_problems(doc: dict[str, Any], where: str) -> list[str]:
    """Every role assignment: a known built-in role, scoped to the one resource type it belongs on."""
    problems = []
    symbols = {name: entry["type"] for name, entry, _body in resources(doc)}
    for name, entry, body in declared(doc):
        if entry["type"] != "Microsoft.Authorization/roleAssignments":
            continue
        label = f"{where}: role assignment {name}"
        props = body.get("properties") or {}
        read_only_problems = custom_read_role_problems(props.get("roleDefinitionId"), doc, label)
        if read_only_problems is not None:
            problems += read_only_problems
            continue
        role_ids = {
            s.lower()
            for s in resolve_strings(props.get("roleDefinitionId"), doc, loop_bindings(entry["config"], doc))
            if GUID.fullmatch(s)
        }
        if not role_ids:
            problems.append(f"{label}: roleDefinitionId does not resolve to a role id")
        scope = body.get("scope")
        scope_type = symbols.get(scope) if isinstance(scope, str) else None
        if scope_type is None:
            problems.append(
                f"{label}: scope must be a resource of this file (got {scope!r}); without one it "
                f"lands on the whole resource group or subscription"
            )
        for role_id in sorted(role_ids):
            if role_id not in KNOWN_ROLES:
                problems.append(f"{label}: role {role_id} is not in the table of allowed built-in roles")
                continue
            role_name, allowed = KNOWN_ROLES[role_id]
            allowed_types = (allowed,) if isinstance(allowed, str) else allowed
            if scope_type is not None and scope_type not in allowed_types:
                problems.append(f"{label}: {role_name} must be scoped to a {' or '.join(allowed_types)}, "
                                f"not {scope_type}")
    return problems


def custom_read_role_problems(role: Any, doc: dict[str, Any], label: str) -> list[str] | None:
    """None unless `role` is `<symbol>.id` of a role definition declared in this file. Such a custom role may
    only read (every action ends in /read, no data actions) and only within the deployment's subscription,
    where its assignment then sits (no `scope`: reading role assignments needs that scope, not a resource's)."""
    operands = ((role or {}).get("operator") or {}).get("operands") or {} if isinstance(role, dict) else {}
    symbol = operands.get("operand_1")
    definition = next((body for name, entry, body in declared(doc)
                       if name == symbol and entry["type"] == "Microsoft.Authorization/roleDefinitions"), None)
    if definition is None or operands.get("operand_2") != "id":
        return None
    props = definition.get("properties") or {}
    actions = [a for p in props.get("permissions") or [] for a in p.get("actions") or []]
    data = [a for p in props.get("permissions") or [] for a in p.get("dataActions") or []]
    problems = [f"{label}: custom role {symbol} may do {a}, not only read" for a in actions
                if not str(a).lower().endswith("/read") or "*" in str(a)]
    problems += [f"{label}: custom role {symbol} has data actions {data}" for _ in data[:1]]
    if ((doc.get("globals") or {}).get("scope") or {}).get("value") != "subscription":
        problems.append(f"{label}: a custom read role belongs in a subscription-scope template")
    return problems


def role_assignments(doc: dict[str, Any]) -> set[tuple[str, str]]:
    """(role name, scope resource type) of every role assignment in a parsed file."""
    symbols = {name: entry["type"] for name, entry, _body in resources(doc)}
    found = set()
    for _name, entry, body in declared(doc):
        if entry["type"] == "Microsoft.Authorization/roleAssignments":
            props = body.get("properties") or {}
            for role_id in resolve_strings(props.get("roleDefinitionId"), doc, loop_bindings(entry["config"], doc)):
                if role_id.lower() in KNOWN_ROLES:
                    found.add((KNOWN_ROLES[role_id.lower()][0], symbols.get(body.get("scope"), "?")))
    return found
