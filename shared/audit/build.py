"""Build the audit pipeline from app settings: the production wiring shared by the Function
app and `wiaudit run`. Each adapter validates its own settings and names what is missing."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import Catalog, load_catalog
from shared.catalog.render import parameter_lets
from shared.posture.catalog import PostureCatalog, load_checks
from shared.settings import SettingsError, read_setting
from shared.suppressions.load import configured_suppressions
from shared.text import join_list
from shared.timespan import parse_timespan


def audit_config(environ: Mapping[str, str] | None = None) -> AuditConfig:
    return AuditConfig(ingestion_delay=timedelta(minutes=read_setting("INGESTION_DELAY_MINUTES", environ)),
                       max_lookback=timedelta(days=read_setting("MAX_LOOKBACK_DAYS", environ)),
                       parameters=parameter_overrides(load_catalog(), environ, load_checks()),
                       public_base_url=read_setting("PUBLIC_BASE_URL", environ),
                       disabled=disabled_rules(load_catalog(), load_checks(), environ))


def disabled_rules(catalog: Catalog, checks: PostureCatalog,
                   environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """DISABLED_DETECTIONS as rule id -> name; each entry must be the id, file name or exact name of a detection or
    posture check."""
    known: dict[str, tuple[str, str]] = {}
    for rules in (catalog, checks):
        for rule in rules:
            for key in (rule.id, rules.paths[rule.id].stem, rule.name):
                known[key] = (rule.id, rule.name)
    entries = read_setting("DISABLED_DETECTIONS", environ) or ()
    if unknown := [entry for entry in entries if entry not in known]:
        quoted = join_list(f'"{entry}"' for entry in unknown)
        raise SettingsError(f"setting DISABLED_DETECTIONS: no detection or posture check has the id, file name or "
                            f"exact name {quoted}")
    return dict(known[entry] for entry in entries)


def parameter_overrides(catalog: Catalog, environ: Mapping[str, str] | None = None,
                        checks: PostureCatalog | None = None) -> dict[str, dict[str, Any]]:
    """DETECTION_PARAMETERS by rule id, each checked against the declared parameters of the detection or
    posture check it names."""
    overrides = {}
    for key, values in read_setting("DETECTION_PARAMETERS", environ).items():
        try:
            rule_id = _checked_rule_id(key, values, catalog, checks)
        except (KeyError, ValueError) as error:
            raise SettingsError(f"setting DETECTION_PARAMETERS: {error}") from None
        overrides[rule_id] = values
    return overrides


def _checked_rule_id(key: str, values: Mapping[str, Any], catalog: Catalog, checks: PostureCatalog | None) -> str:
    if checks is not None and key in checks.stems:
        check = checks.get(key)
        check.values(values)
        return check.id
    detection = catalog.get(key)
    parameter_lets(detection, values)
    too_far = [f"{name} {value}" for name, value in values.items()
               if detection.parameters[name].type == "timespan" and parse_timespan(value) > detection.lookback_span]
    if too_far:
        raise ValueError(f"{key}: {join_list(too_far)} reaches further back than the rule's lookback "
                         f"{detection.lookback}, and its query is given no older logs")
    return detection.id


def azure_credential(environ: Mapping[str, str] | None = None):
    """One DefaultAzureCredential for every client; AZURE_CLIENT_ID picks the user-assigned identity."""
    from azure.identity import DefaultAzureCredential

    client_id = read_setting("AZURE_CLIENT_ID", environ)
    return DefaultAzureCredential(managed_identity_client_id=client_id) if client_id else DefaultAzureCredential()


def log_source_from_settings(credential, environ: Mapping[str, str] | None = None):
    """The Kusto cluster when KUSTO_CLUSTER_URL is set, else the Log Analytics workspace."""
    if read_setting("KUSTO_CLUSTER_URL", environ):
        from shared.logsource.kusto import kusto_source_from_settings

        return kusto_source_from_settings(credential, environ)
    from shared.logsource.log_analytics import log_analytics_source_from_settings

    return log_analytics_source_from_settings(credential, environ)


def pipeline_from_settings(environ: Mapping[str, str] | None = None) -> AuditPipeline:
    """Log Analytics (or a Kusto cluster), Microsoft Graph, Table Storage, the configured notifiers and owner
    notices, one credential."""
    from shared.directory.graph import graph_directory_from_settings
    from shared.directory.resource_graph import azure_roles_from_settings
    from shared.export.ingestion import sink_from_settings
    from shared.notices.factory import owner_notices_from_settings
    from shared.notify.factory import notifiers_from_settings
    from shared.store.tables import TableFindingStore

    config = audit_config(environ)
    credential = azure_credential(environ)
    source = log_source_from_settings(credential, environ)
    directory = azure_roles_from_settings(graph_directory_from_settings(credential, environ), credential, environ)
    notifiers = notifiers_from_settings(credential, environ)
    notices = owner_notices_from_settings(credential, environ)
    export = sink_from_settings(credential, environ)
    store = TableFindingStore.from_settings(credential, environ, channels=[n.channel for n in notifiers])
    store.ensure_tables()
    return AuditPipeline(list(load_catalog()), source, directory, store, notifiers,
                         clock=lambda: datetime.now(UTC), config=config, suppressions=configured_suppressions(environ),
                         notices=notices, export=export)
