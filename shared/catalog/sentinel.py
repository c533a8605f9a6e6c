"""Export the catalog as Microsoft Sentinel scheduled analytic rules.

Two forms of every rule:

- `yaml/<file>.yaml` in the Azure-Sentinel repository format (`Solutions/*/Analytic Rules/*.yaml`),
  keys in that repository's order, our extra keys (`tests`, `lookback`, `parameters`) dropped;
- `arm/<file>.json`, and `arm/all-rules.json` with every rule, ARM templates that deploy the rules to
  a workspace as `Microsoft.SecurityInsights/alertRules` extension resources named by the rule id, so
  a second deployment updates the rules instead of adding copies.

The time contract becomes Sentinel's: the runner's `datetime(…)` window header is replaced by
`let WindowStart = ago(<queryFrequency>); let WindowEnd = now();`. The detection window is the
schedule interval, not the whole queryPeriod: Sentinel lets a query see only the last queryPeriod,
and baselines read `lookback` before WindowStart, so WindowStart = ago(queryPeriod) would push those
reads outside what the query can see. The loader already requires queryPeriod >= queryFrequency +
lookback, so `WindowStart - lookback` stays inside queryPeriod. Parameters become `let`s with their
defaults, on the line after the window; a tier-model list reads a watchlist the export writes beside the rules
(shared/catalog/sentinel_watchlists.py), since inlined it would not fit Sentinel's query size.

Sentinel's own limits that the catalog model does not check (frequency and period of 5m to 14d,
frequency of at least 1h when the period is 2d or more, at most three `{{Column}}` placeholders per
alert format, 10,000 query characters, ...) are checked here, and a rule that breaks one is refused
with the reason rather than written out for Sentinel to reject.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from shared.catalog.loader import Catalog
from shared.catalog.model import Detection
from shared.catalog.sentinel_watchlists import PROVIDER, Watchlist, sentinel_parameter_lets, watchlists
from shared.text import QUANTITY

API_VERSION = "2025-09-01"  # Microsoft.SecurityInsights, latest stable (same ScheduledAlertRule shape as 2024-09-01)
ARM_SCHEMA = "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#"
WORKSPACE_SCOPE = "[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspace'))]"
SUPPRESSION_DURATION = "PT5H"  # Sentinel's default; unused while suppressionEnabled is false
TRIGGER_OPERATORS = {"gt": "GreaterThan", "lt": "LessThan", "eq": "Equal", "ne": "NotEqual"}

MIN_SPAN, MAX_SPAN = timedelta(minutes=5), timedelta(days=14)
MAX_QUERY_CHARS = 10_000
OVERSIZED = f"over Sentinel's limit of {MAX_QUERY_CHARS:,}"
MAX_PLACEHOLDERS = 3
MAX_ENTITY_MAPPINGS, MAX_FIELD_MAPPINGS = 10, 3
MAX_NAME_CHARS, MAX_DESCRIPTION_CHARS = 256, 5000
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")
COLUMN_NAME = re.compile(r"^[A-Za-z_]\w*$")
VERSION = re.compile(r"^\d+\.\d+\.\d+$")
SEVERITY_COLUMN = "Severity"  # a `Severity` output column overrides the rule's severity per row (shared/detect.py)
# Formats with more than MAX_PLACEHOLDERS placeholders, or with a counted noun (`{{N}} time(s)`), are built in the
# query into these columns: Sentinel can neither show more placeholders nor make a noun agree with its count.
BUILT_FORMAT_COLUMNS = {"alertDisplayNameFormat": "AlertDisplayName", "alertDescriptionFormat": "AlertDescription"}


class SentinelExportError(ValueError):
    """Rules Sentinel would reject; one line per problem, naming the rule."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("cannot export to Microsoft Sentinel:\n  " + "\n  ".join(problems))


# --- the whole export -------------------------------------------------------------------------------


def export_sentinel(catalog: Catalog, out: Path) -> list[Path]:
    """Write every rule as YAML and as ARM templates, and the watchlists they read as CSV, under `out`; returns the
    files written, in order.

    A rule whose only problem is a query over Sentinel's size limit is left out rather than stopping the export;
    `oversized` names those rules. Any other problem stops it."""
    problems = [problem for detection in catalog if not _only_oversized(detection)
                for problem in sentinel_problems(detection)]
    if problems:
        raise SentinelExportError(problems)
    exportable = [d for d in catalog if not sentinel_problems(d)]
    rules = sorted(((catalog.paths[d.id].stem, d) for d in exportable), key=lambda rule: rule[0])
    written = [_write(out / "yaml" / f"{stem}.yaml", rule_yaml(detection)) for stem, detection in rules]
    written += [_write(out / "arm" / f"{stem}.json", _json(arm_template([detection]))) for stem, detection in rules]
    written.append(_write(out / "arm" / "all-rules.json", _json(arm_template([d for _, d in rules]))))
    written += [_write(out / "watchlists" / source.file_name, source.csv()) for source in _watchlists_of(exportable)]
    return written


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")
    return path


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# --- the query --------------------------------------------------------------------------------------


def sentinel_query(detection: Detection) -> str:
    """The query as Sentinel runs it: a comment, the window, the parameters, the rule's query, and any
    alert-format columns built in the query."""
    lines = [_window_comment(detection), sentinel_window(detection)]
    lets = sentinel_parameter_lets(detection)
    if lets:
        lines.append(lets)
    lines += [line.rstrip() for line in detection.query.strip("\n").splitlines()]
    lines += [_built_column(BUILT_FORMAT_COLUMNS[key], text) for key, text in _formats(detection).items()
              if _built_in_query(text)]
    return "\n".join(lines) + "\n"


def sentinel_window(detection: Detection) -> str:
    # ago(queryFrequency), not ago(queryPeriod): see the module docstring.
    return f"let WindowStart = ago({sentinel_timespan(detection.frequency)}); let WindowEnd = now();"


def _window_comment(detection: Detection) -> str:
    reach = f"; baselines read {detection.lookback} before it" if detection.lookback_span else ""
    return (f"// Window: the last {sentinel_timespan(detection.frequency)} (the schedule interval){reach}, "
            f"inside queryPeriod {sentinel_timespan(detection.period)}")


def _built_column(column: str, text: str) -> str:
    """`| extend Column = strcat(...)` that spells out a format in the query, one column per alert; a counted
    noun agrees with its count (`1 time`, `2 times`)."""
    parts, done = [], 0
    for match in _counted_nouns(text):
        parts += _format_parts(text[done:match.start()])
        count, words, noun = match.group(1), match.group(2), match.group(3)
        parts += [f"tostring({count})", _kql_string(words),
                  f"iff(tolong({count}) == 1, {_kql_string(noun)}, {_kql_string(noun + 's')})"]
        done = match.end()
    parts += _format_parts(text[done:])
    return f"| extend {column} = strcat({', '.join(parts)})"


def _format_parts(text: str) -> list[str]:
    """strcat arguments for a format's text: literals and placeholders."""
    parts = []
    for index, piece in enumerate(PLACEHOLDER.split(text)):
        if index % 2:
            parts.append(f"tostring({piece})")
        elif piece:
            parts.append(_kql_string(piece))
    return parts


def _counted_nouns(text: str) -> list[re.Match[str]]:
    return [match for match in QUANTITY.finditer(text) if match.group(3)]


def _kql_string(text: str) -> str:
    """A KQL string literal; json.dumps escapes quotes, backslashes and control characters as KQL reads them."""
    return json.dumps(text, ensure_ascii=False)


# --- alert details ----------------------------------------------------------------------------------


def _formats(detection: Detection) -> dict[str, str]:
    override = detection.alertDetailsOverride
    if override is None:
        return {}
    found = {"alertDisplayNameFormat": override.alertDisplayNameFormat,
             "alertDescriptionFormat": override.alertDescriptionFormat}
    return {key: text for key, text in found.items() if text}


def _built_in_query(text: str) -> bool:
    return len(PLACEHOLDER.findall(text)) > MAX_PLACEHOLDERS or bool(_counted_nouns(text))


def alert_details_override(detection: Detection) -> dict[str, str] | None:
    """Sentinel's alertDetailsOverride: the rule's formats (a format built in the query becomes
    `{{<column built in the query>}}`), and the `Severity` column when the query sets one."""
    override = {key: f"{{{{{BUILT_FORMAT_COLUMNS[key]}}}}}" if _built_in_query(text) else text
                for key, text in _formats(detection).items()}
    if re.search(rf"\b{SEVERITY_COLUMN}\s*=(?![=~])", detection.query):
        override["alertSeverityColumnName"] = SEVERITY_COLUMN
    return override or None


# --- checks -----------------------------------------------------------------------------------------


def oversized(catalog: Catalog) -> list[str]:
    """The rules Sentinel would refuse only for their query's size, each with the reason."""
    return [problem for detection in catalog if _only_oversized(detection) for problem in sentinel_problems(detection)]


def _only_oversized(detection: Detection) -> bool:
    found = sentinel_problems(detection)
    return len(found) == 1 and found[0].endswith(OVERSIZED)


def sentinel_problems(detection: Detection) -> list[str]:
    """What Sentinel would reject in this rule (empty: exportable)."""
    found = _span_problems(detection) + _mapping_problems(detection) + _text_problems(detection)
    if not found and len(sentinel_query(detection)) > MAX_QUERY_CHARS:
        found.append(f"the exported query is {len(sentinel_query(detection)):,} characters, {OVERSIZED}")
    return [f"{detection.name} ({detection.id}): {problem}" for problem in found]


def _span_problems(detection: Detection) -> list[str]:
    problems = []
    for key, span in (("queryFrequency", detection.frequency), ("queryPeriod", detection.period)):
        if not MIN_SPAN <= span <= MAX_SPAN:
            problems.append(f"{key} must be between 5m and 14d")
        elif _whole_minutes(span) is None:
            problems.append(f"{key} must be a whole number of minutes")
    if detection.period >= timedelta(days=2) and detection.frequency < timedelta(hours=1):
        problems.append("queryFrequency must be at least 1h when queryPeriod is 2d or more")
    if detection.frequency > detection.period:
        problems.append("queryFrequency must not exceed queryPeriod")
    return problems


def _mapping_problems(detection: Detection) -> list[str]:
    problems = []
    if len(detection.entityMappings) > MAX_ENTITY_MAPPINGS:
        problems.append(f"at most {MAX_ENTITY_MAPPINGS} entity mappings")
    for entity in detection.entityMappings:
        if len(entity.fieldMappings) > MAX_FIELD_MAPPINGS:
            problems.append(f"entity {entity.entityType}: at most {MAX_FIELD_MAPPINGS} field mappings")
        problems += [f"entity {entity.entityType}: column {field.columnName!r} is not a plain column name"
                     for field in entity.fieldMappings if not COLUMN_NAME.match(field.columnName)]
    return problems


def _text_problems(detection: Detection) -> list[str]:
    problems = []
    if len(detection.name) > MAX_NAME_CHARS:
        problems.append(f"name is over {MAX_NAME_CHARS} characters")
    if len(detection.description) > MAX_DESCRIPTION_CHARS:
        problems.append(f"description is over {MAX_DESCRIPTION_CHARS} characters")
    if not VERSION.match(detection.version):
        problems.append("version must be X.Y.Z (numbers)")
    if not 0 <= detection.triggerThreshold <= 10_000:
        problems.append("triggerThreshold must be between 0 and 10000")
    for key, text in _formats(detection).items():
        if "\n" in text:
            problems.append(f"alertDetailsOverride.{key} must be one line")
        problems += [f"alertDetailsOverride.{key}: {{{{{name}}}}} is not a plain column name"
                     for name in PLACEHOLDER.findall(text) if not COLUMN_NAME.match(name)]
    return problems


# --- timespans --------------------------------------------------------------------------------------


def _whole_minutes(span: timedelta) -> int | None:
    seconds = span.total_seconds()
    return int(seconds // 60) if seconds % 60 == 0 else None


def sentinel_timespan(span: timedelta) -> str:
    """The Azure-Sentinel YAML form: a whole number of d, h or m (`1d`, `14d`, `36h`, `90m`)."""
    minutes = _whole_minutes(span)
    if minutes is None:
        raise ValueError(f"{span} is not a whole number of minutes")
    for unit, size in (("d", 1440), ("h", 60)):
        if minutes and minutes % size == 0:
            return f"{minutes // size}{unit}"
    return f"{minutes}m"


def iso_duration(span: timedelta) -> str:
    """The ARM form, ISO 8601: `P1D`, `P14D`, `PT1H`, `PT36H`, `PT90M`."""
    minutes = _whole_minutes(span)
    if minutes is None:
        raise ValueError(f"{span} is not a whole number of minutes")
    if minutes and minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    if minutes and minutes % 60 == 0:
        return f"PT{minutes // 60}H"
    return f"PT{minutes}M"


# --- YAML (Azure-Sentinel repository format) --------------------------------------------------------


def sentinel_rule(detection: Detection) -> dict[str, Any]:
    """The rule as an Azure-Sentinel repository YAML document, keys in that repository's order."""
    rule: dict[str, Any] = {
        "id": detection.id,
        "name": detection.name,
        "description": detection.description,
        "severity": detection.severity,
        "requiredDataConnectors": [connector.model_dump() for connector in detection.requiredDataConnectors],
        "queryFrequency": sentinel_timespan(detection.frequency),
        "queryPeriod": sentinel_timespan(detection.period),
        "triggerOperator": detection.triggerOperator,
        "triggerThreshold": detection.triggerThreshold,
        "tactics": list(detection.tactics),
        "relevantTechniques": list(detection.relevantTechniques),
        "query": sentinel_query(detection),
        "entityMappings": _entity_mappings(detection),
    }
    override = alert_details_override(detection)
    if override:
        rule["alertDetailsOverride"] = override
    rule["eventGroupingSettings"] = {"aggregationKind": "AlertPerResult"}  # one alert per row, as our findings
    rule["version"] = detection.version
    rule["kind"] = "Scheduled"
    return rule


def _entity_mappings(detection: Detection) -> list[dict[str, Any]]:
    return [entity.model_dump() for entity in detection.entityMappings]


def rule_yaml(detection: Detection) -> str:
    return yaml.dump(sentinel_rule(detection), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=1000)


class _BlockDumper(yaml.SafeDumper):
    """Multi-line strings (query, description) as `|` blocks, as in the Azure-Sentinel repository."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent list items under their key


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


# --- ARM --------------------------------------------------------------------------------------------


def arm_template(detections: Iterable[Detection]) -> dict[str, Any]:
    """A deployment template for a resource group: parameter `workspace`, the watchlists the rules read, then one
    alert rule per detection."""
    detections = list(detections)
    return {
        "$schema": ARM_SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "workspace": {
                "type": "string",
                "metadata": {"description": "The Log Analytics workspace that Microsoft Sentinel is enabled on"},
            },
        },
        "resources": [*map(arm_watchlist, _watchlists_of(detections)), *map(arm_rule, detections)],
    }


def _watchlists_of(detections: Iterable[Detection]) -> list[Watchlist]:
    found = {source.alias: source for detection in detections for source in watchlists(detection)}
    return [found[alias] for alias in sorted(found)]


def arm_watchlist(source: Watchlist) -> dict[str, Any]:
    """One `Microsoft.SecurityInsights/watchlists` resource on the workspace, named by its alias, its items inline
    as CSV: deploying again replaces the items with the tier model's."""
    return {
        "type": "Microsoft.SecurityInsights/watchlists",
        "apiVersion": API_VERSION,
        "name": source.alias,
        "scope": WORKSPACE_SCOPE,
        "properties": _arm_literal({
            "watchlistAlias": source.alias,
            "displayName": source.display_name,
            "description": source.description,
            "provider": PROVIDER,
            "source": source.file_name,
            "sourceType": "Local",  # the items are in rawContent, not in a storage account
            "itemsSearchKey": source.column,
            "contentType": "text/csv",
            "numberOfLinesToSkip": 0,
            "rawContent": source.csv(),
        }),
    }


def _watchlist_id(source: Watchlist) -> str:
    return (f"[extensionResourceId(resourceId('Microsoft.OperationalInsights/workspaces', parameters('workspace')), "
            f"'Microsoft.SecurityInsights/watchlists', '{source.alias}')]")


def arm_rule(detection: Detection) -> dict[str, Any]:
    """One `Microsoft.SecurityInsights/alertRules` resource on the workspace, named by the rule id."""
    properties: dict[str, Any] = {
        "displayName": detection.name,
        "description": detection.description,
        "severity": detection.severity,
        "enabled": True,
        "query": sentinel_query(detection),
        "queryFrequency": iso_duration(detection.frequency),
        "queryPeriod": iso_duration(detection.period),
        "triggerOperator": TRIGGER_OPERATORS[detection.triggerOperator],
        "triggerThreshold": detection.triggerThreshold,
        "suppressionDuration": SUPPRESSION_DURATION,
        "suppressionEnabled": False,
        "tactics": list(detection.tactics),
        "techniques": arm_techniques(detection.relevantTechniques),
        "entityMappings": _entity_mappings(detection),
        "eventGroupingSettings": {"aggregationKind": "AlertPerResult"},
    }
    override = alert_details_override(detection)
    if override:
        properties["alertDetailsOverride"] = override
    resource = {
        "type": "Microsoft.SecurityInsights/alertRules",
        "apiVersion": API_VERSION,
        "name": detection.id,
        "scope": WORKSPACE_SCOPE,
        "kind": "Scheduled",
        "properties": _arm_literal(properties),
    }
    reads = watchlists(detection)
    if reads:
        resource["dependsOn"] = [_watchlist_id(source) for source in reads]
    return resource


def arm_techniques(techniques: Iterable[str]) -> list[str]:
    """The stable API's `techniques` takes technique ids only (T1098), so sub-techniques map to their parent."""
    return list(dict.fromkeys(technique.split(".")[0] for technique in techniques))


def _arm_literal(value: Any) -> Any:
    """ARM evaluates a string starting with `[` as an expression; `[[` keeps it literal."""
    if isinstance(value, str):
        return "[" + value if value.startswith("[") else value
    if isinstance(value, dict):
        return {key: _arm_literal(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_arm_literal(item) for item in value]
    return value
