"""`wiaudit detections export-sentinel`: every catalog rule as a Microsoft Sentinel scheduled analytic rule,
in the Azure-Sentinel repository's YAML format and as ARM templates, checked against Sentinel's own rules
and Microsoft's Kusto parser. The tests walk whatever rules the catalog holds."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb_kql
import pytest
import yaml
from typer.testing import CliRunner

from shared.catalog.loader import Catalog, load_catalog
from shared.catalog.model import AlertDetails, Detection, Parameter
from shared.catalog.render import parameter_lets
from shared.catalog.sentinel import (
    API_VERSION,
    MAX_QUERY_CHARS,
    WORKSPACE_SCOPE,
    SentinelExportError,
    arm_rule,
    export_sentinel,
    iso_duration,
    oversized,
    sentinel_problems,
    sentinel_query,
    sentinel_timespan,
)
from shared.catalog.sentinel_watchlists import SEARCH_KEY, Watchlist, watchlists
from shared.catalog.testing import compare_rows
from shared.cli import app
from shared.cli import detections as detections_cli
from shared.directory.tiers.lookup import tier_model
from shared.kql.validator import validate_queries
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.timespan import parse_timespan

CATALOG = load_catalog()
# Rules Sentinel takes; a rule whose query is over its size limit would be left out of the export (tested below).
EXPORTED = [detection for detection in CATALOG if not sentinel_problems(detection)]
GRANT_RULE = "High-privilege application permission granted to a service principal"
WITH_WATCHLISTS = [detection for detection in EXPORTED if watchlists(detection)]
STEMS = {detection.id: CATALOG.paths[detection.id].stem for detection in EXPORTED}
runner = CliRunner(env={"COLUMNS": "200"})

# The Azure-Sentinel repository's key order (Solutions/*/Analytic Rules/*.yaml); optional keys may be absent.
YAML_KEYS = ("id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency", "queryPeriod",
             "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques", "query", "entityMappings",
             "alertDetailsOverride", "eventGroupingSettings", "version", "kind")
OPTIONAL_YAML_KEYS = {"alertDetailsOverride"}
# .script/tests/detectionTemplateSchemaValidation/Models/AttackTactic.cs
SENTINEL_TACTICS = {"InitialAccess", "Execution", "Persistence", "PrivilegeEscalation", "DefenseEvasion",
                    "CredentialAccess", "Discovery", "LateralMovement", "Collection", "Exfiltration",
                    "CommandAndControl", "Impact", "Reconnaissance", "ResourceDevelopment", "ImpairProcessControl",
                    "InhibitResponseFunction"}
ARM_PROPERTIES = {"displayName", "description", "severity", "enabled", "query", "queryFrequency", "queryPeriod",
                  "triggerOperator", "triggerThreshold", "suppressionDuration", "suppressionEnabled", "tactics",
                  "techniques", "entityMappings", "eventGroupingSettings"}
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
YAML_SPAN = re.compile(r"^\d+[mhd]$")
ISO_SPAN = re.compile(r"^P(\d+D|T\d+[HM])$")
PLACEHOLDER = re.compile(r"\{\{([^{}]*)\}\}")


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sentinel")
    export_sentinel(CATALOG, out)
    return out


@pytest.fixture(scope="module")
def yaml_rules(exported: Path) -> dict[str, dict[str, Any]]:
    """Exported YAML documents by rule id."""
    paths = sorted((exported / "yaml").glob("*.yaml"))
    documents = [yaml.safe_load(path.read_text(encoding="utf-8")) for path in paths]
    return {document["id"]: document for document in documents}


@pytest.fixture(scope="module")
def all_rules(exported: Path) -> dict[str, Any]:
    return json.loads((exported / "arm" / "all-rules.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def arm_resources(all_rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["name"]: resource for resource in all_rules["resources"]}


@pytest.fixture(scope="module")
def arm_watchlists(all_rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {resource["name"]: resource for resource in all_rules["resources"]
            if resource["type"] == "Microsoft.SecurityInsights/watchlists"}


def _span(text: str) -> timedelta:
    return parse_timespan(text)


def _iso(text: str) -> timedelta:
    match = re.fullmatch(r"P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?", text)
    assert match, text
    days, hours, minutes = (int(group or 0) for group in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


# --- files ------------------------------------------------------------------------------------------


def test_every_rule_is_written_as_yaml_and_as_arm(exported: Path, all_rules: dict[str, Any]):
    for detection in EXPORTED:
        stem = STEMS[detection.id]
        assert (exported / "yaml" / f"{stem}.yaml").is_file()
        single = json.loads((exported / "arm" / f"{stem}.json").read_text(encoding="utf-8"))
        rule = next(r for r in all_rules["resources"] if r["name"] == detection.id)
        reads = [next(r for r in all_rules["resources"] if r["name"] == source.alias)
                 for source in watchlists(detection)]
        assert single["resources"] == [*reads, rule]  # a rule's own template deploys the watchlists it reads
    assert len(list((exported / "yaml").glob("*.yaml"))) == len(EXPORTED)
    rules = [r for r in all_rules["resources"] if r["type"] == "Microsoft.SecurityInsights/alertRules"]
    assert len(rules) == len(EXPORTED)


def test_every_catalog_rule_fits_sentinel(exported: Path):
    """The tier model's lists are watchlists, not inlined names: the grant rule's query was 10,758 characters."""
    assert oversized(CATALOG) == [] and len(EXPORTED) == len(CATALOG)
    assert all(len(sentinel_query(detection)) <= MAX_QUERY_CHARS for detection in CATALOG)
    grant = next(detection for detection in CATALOG if detection.name == GRANT_RULE)
    query = sentinel_query(grant)
    assert "_GetWatchlist('WiauditTier0AppPermissions')" in query
    assert not [name for name in tier_model().tier0_permissions() if f'"{name}"' in query]


def test_a_rule_over_sentinels_size_limit_is_left_out_and_named(tmp_path: Path):
    too_long = _oversized_rule()
    catalog = Catalog([*((CATALOG.paths[d.id], d) for d in CATALOG), (Path("too_long.yaml"), too_long)])
    assert oversized(catalog) == [f"{too_long.name} ({too_long.id}): the exported query is "
                                  f"{len(sentinel_query(too_long)):,} characters, over Sentinel's limit of 10,000"]
    export_sentinel(catalog, tmp_path)
    exported_names = {yaml.safe_load(p.read_text())["name"] for p in (tmp_path / "yaml").glob("*.yaml")}
    assert exported_names == {detection.name for detection in CATALOG}


def _oversized_rule() -> Detection:
    """A rule whose own default list is too long to inline: only tier-model lists become watchlists."""
    base = next(iter(CATALOG))
    apps = [f"app-{number:05d}" for number in range(1000)]
    return base.model_copy(update={
        "id": "00000000-0000-4000-8000-000000000001", "name": "A rule with a long list of its own",
        "parameters": {"Apps": Parameter(type="dynamic", default=apps, description="allowed apps")}})


def test_the_export_is_deterministic(exported: Path, tmp_path: Path):
    export_sentinel(CATALOG, tmp_path)
    first = {path.relative_to(exported): path.read_bytes() for path in exported.rglob("*") if path.is_file()}
    second = {path.relative_to(tmp_path): path.read_bytes() for path in tmp_path.rglob("*") if path.is_file()}
    assert first == second


# --- YAML -------------------------------------------------------------------------------------------


def test_yaml_has_the_azure_sentinel_keys_in_their_order(yaml_rules: dict[str, dict[str, Any]]):
    for detection in EXPORTED:
        rule = yaml_rules[detection.id]
        expected = [key for key in YAML_KEYS if key not in OPTIONAL_YAML_KEYS or key in rule]
        assert list(rule) == expected, detection.name
        assert {"tests", "lookback", "parameters"}.isdisjoint(rule)


def test_yaml_fields_and_formats(yaml_rules: dict[str, dict[str, Any]]):
    for detection in EXPORTED:
        rule = yaml_rules[detection.id]
        assert GUID.match(rule["id"]) and rule["kind"] == "Scheduled"
        assert rule["name"] == detection.name and rule["description"] == detection.description
        assert rule["severity"] in ("Informational", "Low", "Medium", "High")
        assert all(c["connectorId"] and c["dataTypes"] for c in rule["requiredDataConnectors"])
        assert YAML_SPAN.match(rule["queryFrequency"]) and YAML_SPAN.match(rule["queryPeriod"])
        frequency, period = _span(rule["queryFrequency"]), _span(rule["queryPeriod"])
        assert (frequency, period) == (detection.frequency, detection.period)
        assert timedelta(minutes=5) <= frequency <= period <= timedelta(days=14)
        assert period < timedelta(days=2) or frequency >= timedelta(hours=1)
        assert rule["triggerOperator"] == "gt" and 0 <= rule["triggerThreshold"] <= 10_000
        assert set(rule["tactics"]) <= SENTINEL_TACTICS and rule["tactics"]
        assert all(re.match(r"^T\d{4}(\.\d{3})?$", technique) for technique in rule["relevantTechniques"])
        assert re.match(r"^\d+\.\d+\.\d+$", rule["version"])
        assert rule["eventGroupingSettings"] == {"aggregationKind": "AlertPerResult"}
        assert len(rule["query"]) <= 10_000


def test_yaml_entity_mappings_and_alert_details(yaml_rules: dict[str, dict[str, Any]]):
    for detection in EXPORTED:
        rule = yaml_rules[detection.id]
        assert 1 <= len(rule["entityMappings"]) <= 10
        for entity in rule["entityMappings"]:
            assert set(entity) == {"entityType", "fieldMappings"}
            assert 1 <= len(entity["fieldMappings"]) <= 3
            assert all(set(field) == {"identifier", "columnName"} for field in entity["fieldMappings"])
        for key, text in rule.get("alertDetailsOverride", {}).items():
            if key.endswith("Format"):
                assert len(PLACEHOLDER.findall(text)) <= 3, (detection.name, key)


# --- ARM --------------------------------------------------------------------------------------------


def test_arm_template_shape(all_rules: dict[str, Any], arm_watchlists: dict[str, dict[str, Any]]):
    assert all_rules["$schema"].endswith("/deploymentTemplate.json#")
    assert all_rules["contentVersion"] == "1.0.0.0"
    assert all_rules["parameters"]["workspace"]["type"] == "string"
    resources = all_rules["resources"]
    assert [r["type"] for r in resources] == (["Microsoft.SecurityInsights/watchlists"] * len(arm_watchlists)
                                              + ["Microsoft.SecurityInsights/alertRules"] * len(EXPORTED))
    for resource in resources:
        assert resource["apiVersion"] == API_VERSION and resource["scope"] == WORKSPACE_SCOPE
        assert "parameters('workspace')" in resource["scope"]
    for resource in resources[len(arm_watchlists):]:
        assert resource["kind"] == "Scheduled"
        assert resource["name"] in CATALOG.detections  # named by the rule id: redeploying updates, never duplicates


def test_arm_properties(arm_resources: dict[str, dict[str, Any]], yaml_rules: dict[str, dict[str, Any]]):
    for detection in EXPORTED:
        properties, rule = arm_resources[detection.id]["properties"], yaml_rules[detection.id]
        assert ARM_PROPERTIES <= set(properties) <= ARM_PROPERTIES | {"alertDetailsOverride"}
        assert properties["displayName"] == detection.name and properties["enabled"] is True
        assert ISO_SPAN.match(properties["queryFrequency"]) and ISO_SPAN.match(properties["queryPeriod"])
        assert _iso(properties["queryFrequency"]) == detection.frequency
        assert _iso(properties["queryPeriod"]) == detection.period
        assert properties["triggerOperator"] == "GreaterThan"
        assert properties["triggerThreshold"] == detection.triggerThreshold
        assert properties["suppressionEnabled"] is False and ISO_SPAN.match(properties["suppressionDuration"])
        assert properties["tactics"] == rule["tactics"]
        assert all(re.match(r"^T\d{4}$", technique) for technique in properties["techniques"])
        assert {t.split(".")[0] for t in rule["relevantTechniques"]} == set(properties["techniques"])
        assert properties["query"] == rule["query"]
        assert properties["entityMappings"] == rule["entityMappings"]
        assert properties.get("alertDetailsOverride") == rule.get("alertDetailsOverride")


def test_arm_keeps_a_leading_bracket_literal():
    detection = next(iter(CATALOG)).model_copy(update={"description": "[preview] something"})
    assert arm_rule(detection)["properties"]["description"] == "[[preview] something"


# --- the query --------------------------------------------------------------------------------------


def test_the_window_header_is_rewritten_for_sentinel(yaml_rules: dict[str, dict[str, Any]]):
    for detection in EXPORTED:
        query = yaml_rules[detection.id]["query"]
        window = f"let WindowStart = ago({yaml_rules[detection.id]['queryFrequency']}); let WindowEnd = now();"
        assert window in query.splitlines()
        assert "ago(" in query and "now()" in query
        assert not re.search(r"Window(Start|End)\s*=\s*datetime\(", query)
        assert query.index(window) < query.index(detection.query.strip().splitlines()[0])


def test_exported_queries_pass_the_kusto_parser(yaml_rules: dict[str, dict[str, Any]]):
    """The query declares its own window and parameters, so the validation header declares nothing."""
    queries = [(detection.id, yaml_rules[detection.id]["query"]) for detection in EXPORTED]
    checks = validate_queries(queries, headers={detection.id: "" for detection in EXPORTED})
    for detection in EXPORTED:
        check, rule = checks[detection.id], yaml_rules[detection.id]
        assert not check.errors, (detection.name, check.errors)
        mapped = {field["columnName"] for entity in rule["entityMappings"] for field in entity["fieldMappings"]}
        override = rule.get("alertDetailsOverride", {})
        placeholders = {name for key, text in override.items() if key.endswith("Format")
                        for name in PLACEHOLDER.findall(text)}
        severity = {override["alertSeverityColumnName"]} if "alertSeverityColumnName" in override else set()
        assert mapped | placeholders | severity <= set(check.columns), detection.name


def test_parameters_become_lets_with_their_defaults():
    for detection in [d for d in EXPORTED if d.parameters]:
        lines = sentinel_query(detection).splitlines()
        assert all(f"let {name} = " in lines[2] for name in detection.parameters)
        if not watchlists(detection):
            assert lines[2] == parameter_lets(detection)  # the runner's own lets, defaults included
    for detection in WITH_WATCHLISTS:
        line = sentinel_query(detection).splitlines()[2]
        for name, parameter in detection.parameters.items():
            if parameter.defaultFrom:
                alias = next(s.alias for s in watchlists(detection) if s.column == _column(parameter.defaultFrom))
                assert f"let {name} = toscalar(_GetWatchlist('{alias}') | summarize make_list({SEARCH_KEY}));" in line
            else:
                assert f"let {name} = {parameter_lets(detection).split(f'let {name} = ')[1].split(';')[0]};" in line

    base = next(iter(CATALOG))
    detection = base.model_copy(update={"parameters": {
        "Threshold": Parameter(type="int", default=5, description="failures before an alert"),
        "Quiet": Parameter(type="timespan", default="2h", description="quiet period"),
        "Apps": Parameter(type="dynamic", default=["a", "b"], description="allowed apps"),
    }})
    lines = sentinel_query(detection).splitlines()
    assert lines[2] == 'let Threshold = 5; let Quiet = 2h; let Apps = dynamic(["a", "b"]);'
    assert lines[1].startswith("let WindowStart = ago(") and lines[3] == base.query.splitlines()[0].rstrip()


def test_a_format_over_three_placeholders_is_built_in_the_query():
    base = next(iter(CATALOG))
    column = base.principal_column
    detection = base.model_copy(update={"alertDetailsOverride": AlertDetails(
        alertDisplayNameFormat=f"{{{{{column}}}}} alert",
        alertDescriptionFormat=f'{{{{{column}}}}} "a" {{{{{column}}}}} b {{{{{column}}}}} c {{{{{column}}}}}',
    )})
    override = arm_rule(detection)["properties"]["alertDetailsOverride"]
    assert override == {"alertDisplayNameFormat": f"{{{{{column}}}}} alert",
                        "alertDescriptionFormat": "{{AlertDescription}}"}
    last = sentinel_query(detection).splitlines()[-1]
    assert last == (f'| extend AlertDescription = strcat(tostring({column}), " \\"a\\" ", tostring({column}), " b ", '
                    f'tostring({column}), " c ", tostring({column}))')
    check = validate_queries([("q", sentinel_query(detection))], headers={"q": ""})["q"]
    assert not check.errors and "AlertDescription" in check.columns


# --- watchlists ------------------------------------------------------------------------------------


def _column(default_from: str) -> str:
    return {"applicationPermissions": "Permission", "directoryRoles": "Role"}[default_from]


def test_the_tier_model_lists_are_written_as_watchlist_csv(exported: Path):
    expected = {"WiauditTier0AppPermissions": ("Permission", tier_model().tier0_permissions()),
                "WiauditTier0EntraRoles": ("Role", tier_model().tier0_entra_roles())}
    assert {path.stem for path in (exported / "watchlists").glob("*.csv")} == set(expected)
    for alias, (column, names) in expected.items():
        rows = list(csv.reader(io.StringIO((exported / "watchlists" / f"{alias}.csv").read_text(encoding="utf-8"))))
        assert rows[0] == [column] and [row[0] for row in rows[1:]] == names and all(len(r) == 1 for r in rows)
        assert len(names) > 10


def test_watchlists_are_arm_resources_the_rules_depend_on(arm_watchlists: dict[str, dict[str, Any]],
                                                          arm_resources: dict[str, dict[str, Any]], exported: Path):
    assert set(arm_watchlists) == {source.alias for d in EXPORTED for source in watchlists(d)}
    for alias, resource in arm_watchlists.items():
        properties = resource["properties"]
        # WatchlistProperties of Microsoft.SecurityInsights 2025-09-01 that a template sets
        assert set(properties) == {"watchlistAlias", "displayName", "description", "provider", "source",
                                   "sourceType", "itemsSearchKey", "contentType", "numberOfLinesToSkip", "rawContent"}
        assert properties["sourceType"] == "Local" and properties["itemsSearchKey"] in ("Permission", "Role")
        assert properties["watchlistAlias"] == alias and properties["source"] == f"{alias}.csv"
        assert properties["contentType"] == "text/csv" and properties["numberOfLinesToSkip"] == 0
        assert properties["rawContent"] == (exported / "watchlists" / f"{alias}.csv").read_text(encoding="utf-8")
        assert properties["rawContent"].splitlines()[0] == properties["itemsSearchKey"]
    for detection in EXPORTED:
        depends = arm_resources[detection.id].get("dependsOn", [])
        assert len(depends) == len(watchlists(detection))
        for source, reference in zip(watchlists(detection), depends, strict=True):
            assert reference.startswith("[extensionResourceId(") and reference.endswith(
                f"'Microsoft.SecurityInsights/watchlists', '{source.alias}')]")
            assert f"_GetWatchlist('{source.alias}')" in arm_resources[detection.id]["properties"]["query"]


def test_a_rule_reading_a_watchlist_names_it_in_its_description():
    """An analyst reading the rule in Sentinel learns where its list lives and can add to it there."""
    missing = [(d.name, source.alias) for d in WITH_WATCHLISTS for source in watchlists(d)
               if source.alias not in d.description]
    assert WITH_WATCHLISTS and not missing


def _watchlist_function(sources: list[Watchlist], items: bool = True) -> str:
    """_GetWatchlist for the embedded engine, over the watchlists' own items (or none)."""
    rows = ", ".join(f'"{source.alias}", "{item}"' for source in sources for item in source.items) if items else ""
    return ("function _GetWatchlist(watchlistAlias:string) { datatable(Alias:string, SearchKey:string)[" + rows
            + "] | where Alias == watchlistAlias }")


@pytest.fixture
def embedded_functions():
    saved = duckdb_kql.get_functions()
    yield duckdb_kql.set_functions
    duckdb_kql.set_functions(saved)


def _run_exported(detection: Detection, test: Any) -> list[dict[str, Any]]:
    database = LogDatabase()
    for table, rows in test.rows.items():
        assert not database.insert(table, ((None, row) for row in rows))
    source = EmbeddedLogSource(database, now=test.window.end)  # ago(queryFrequency) is the test window's start
    return source.query(sentinel_query(detection), test.window.start, test.window.end)


def test_exported_rules_reading_a_watchlist_give_their_tests_rows_on_the_embedded_engine(embedded_functions):
    cases = [(d, t) for d in WITH_WATCHLISTS for t in d.tests
             if not t.parameters and t.window.end - t.window.start == d.frequency]
    assert {d.name for d, _ in cases} == {d.name for d in WITH_WATCHLISTS} and GRANT_RULE in {d.name for d, _ in cases}
    for detection, test in cases:
        embedded_functions([_watchlist_function(watchlists(detection))])
        assert compare_rows(test.expect, _run_exported(detection, test)) == [], (detection.name, test.name)
        if test.expect:  # the names come from the watchlist: an empty one fires nothing
            embedded_functions([_watchlist_function(watchlists(detection), items=False)])
            assert _run_exported(detection, test) == [], (detection.name, test.name)


# --- Sentinel's limits ------------------------------------------------------------------------------



def test_a_counted_noun_agrees_with_its_count_in_the_exported_alert():
    base = next(iter(CATALOG))
    detection = base.model_copy(update={"alertDetailsOverride": AlertDetails(
        alertDisplayNameFormat="Failures", alertDescriptionFormat="{{Name}} failed {{Failures}} time(s) today")})
    override = arm_rule(detection)["properties"]["alertDetailsOverride"]
    assert override["alertDescriptionFormat"] == "{{AlertDescription}}"
    built = sentinel_query(detection).splitlines()[-1]
    rows = duckdb_kql.query(duckdb_kql.connect(), 'datatable(Name:string, Failures:long)["app-a", 1, "app-b", 2]\n'
                            + built + "\n| project AlertDescription").fetchall()
    assert [row[0] for row in rows] == ["app-a failed 1 time today", "app-b failed 2 times today"]


def test_no_exported_alert_text_keeps_a_plural_marker(yaml_rules: dict[str, dict[str, Any]]):
    for name, rule in yaml_rules.items():
        formats = (rule.get("alertDetailsOverride") or {}).values()
        assert not [text for text in formats if "(s)" in str(text)], name


@pytest.mark.parametrize(("text", "kql", "iso"), [
    ("5m", "5m", "PT5M"), ("90m", "90m", "PT90M"), ("1h", "1h", "PT1H"), ("36h", "36h", "PT36H"),
    ("24h", "1d", "P1D"), ("1d", "1d", "P1D"), ("14d", "14d", "P14D"),
])
def test_timespan_formats(text: str, kql: str, iso: str):
    assert sentinel_timespan(parse_timespan(text)) == kql
    assert iso_duration(parse_timespan(text)) == iso


@pytest.mark.parametrize(("update", "message"), [
    ({"queryFrequency": "2m"}, "queryFrequency must be between 5m and 14d"),
    ({"queryFrequency": "30m", "queryPeriod": "3d"}, "at least 1h when queryPeriod is 2d or more"),
    ({"queryFrequency": "90s"}, "queryFrequency must be between 5m and 14d"),
    ({"version": "1.0"}, "version must be X.Y.Z"),
])
def test_a_rule_sentinel_would_reject_is_refused(update: dict[str, Any], message: str):
    detection = next(iter(CATALOG)).model_copy(update=update)
    assert any(message in problem for problem in sentinel_problems(detection))
    with pytest.raises(SentinelExportError, match=re.escape(detection.name)):
        export_sentinel(_catalog_of(detection), Path("/nonexistent/never-written"))


def _catalog_of(detection: Detection) -> Catalog:
    return Catalog([(Path("rule.yaml"), detection)])


# --- the command ------------------------------------------------------------------------------------


def test_the_command_writes_every_rule_sentinel_takes_names_the_others_and_refuses_a_non_empty_folder(tmp_path: Path):
    out = tmp_path / "sentinel"
    first = runner.invoke(app, ["detections", "export-sentinel", "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert f"{len(CATALOG)} rules exported" in first.output and "not exported" not in first.output
    for stem in STEMS.values():
        assert f"wrote {out / 'yaml' / stem}.yaml" in first.output
        assert f"wrote {out / 'arm' / stem}.json" in first.output
    assert f"wrote {out / 'arm' / 'all-rules.json'}" in first.output
    assert f"wrote {out / 'watchlists' / 'WiauditTier0AppPermissions.csv'}" in first.output

    again = runner.invoke(app, ["detections", "export-sentinel", "--out", str(out)])
    assert again.exit_code == 2 and "is not empty" in again.output


def test_force_replaces_an_earlier_export_and_keeps_other_files(tmp_path: Path):
    (tmp_path / "yaml").mkdir()
    (tmp_path / "yaml" / "removed_rule.yaml").write_text("id: gone\n")
    (tmp_path / "notes.txt").write_text("mine\n")
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "RemovedList.csv").write_text("Name\nx\n")
    result = runner.invoke(app, ["detections", "export-sentinel", "--out", str(tmp_path), "--force"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "watchlists" / "RemovedList.csv").exists()
    assert not (tmp_path / "yaml" / "removed_rule.yaml").exists()
    assert (tmp_path / "notes.txt").read_text() == "mine\n"
    written = {Path(line.removeprefix("wrote ")) for line in result.output.splitlines() if line.startswith("wrote ")}
    assert set((tmp_path / "yaml").glob("*.yaml")) == {path for path in written if path.suffix == ".yaml"}


def test_the_command_names_a_rule_too_long_for_sentinel_and_exits_1(tmp_path: Path, monkeypatch):
    too_long = _oversized_rule()
    catalog = Catalog([*((CATALOG.paths[d.id], d) for d in CATALOG), (Path("too_long.yaml"), too_long)])
    monkeypatch.setattr(detections_cli, "_catalog", lambda: catalog)
    result = runner.invoke(app, ["detections", "export-sentinel", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert f"{len(CATALOG)} rules exported" in result.output
    assert f"not exported {too_long.name} ({too_long.id}): the exported query is" in result.output
