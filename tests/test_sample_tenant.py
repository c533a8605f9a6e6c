"""The sample tenant: deterministic, loadable, and every injected story found with no false alarm."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest

from shared.catalog.loader import load_catalog
from shared.detect import run_catalog
from shared.directory.model import DirectorySnapshot
from shared.logsource.embedded import EmbeddedLogSource
from shared.sample_tenant.generator import MIN_SERVICE_PRINCIPALS, SAMPLE_NOW, generate
from shared.sample_tenant.identities import MICROSOFT_TENANT
from shared.sample_tenant.manifest import Manifest
from shared.sample_tenant.stories import all_stories
from shared.severity import severity_rank


def _digest(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def tenant(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tenant")
    generate(out, seed=7, service_principals=30, days=21)
    return out


@pytest.fixture(scope="module")
def audit(tenant):
    catalog = load_catalog()
    source, report = EmbeddedLogSource.from_folder(tenant / "logs", SAMPLE_NOW)
    manifest = Manifest.load(tenant / "manifest.json", catalog)
    return report, manifest, run_catalog(catalog, source, SAMPLE_NOW - timedelta(days=7), SAMPLE_NOW)


def test_same_seed_same_tenant_other_seed_other_tenant(tenant, tmp_path):
    generate(tmp_path / "again", seed=7, service_principals=30, days=21)
    generate(tmp_path / "other", seed=8, service_principals=30, days=21)
    assert _digest(tmp_path / "again") == _digest(tenant)
    assert _digest(tmp_path / "other") != _digest(tenant)


def test_logs_load_cleanly_into_every_table_the_stories_need(audit):
    report, _, _ = audit
    assert report.problems == []
    for table in ("AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs", "AuditLogs", "AzureActivity",
                  "AzureDiagnostics"):
        assert report.rows[table] > 0, table


def test_every_story_is_found(audit):
    _, manifest, run = audit
    assert run.errors == {}
    assert [s.id for s in manifest.missed(run.findings)] == []
    assert len({s.id for s in manifest.scenarios}) >= 6


def test_no_alert_above_informational_without_a_story(audit):
    _, manifest, run = audit
    unexplained = [f"{f.detection_name}: {f.principal_name}" for f in run.findings
                   if severity_rank(f.severity) > 0 and manifest.scenario_of(f) is None]
    assert unexplained == []


def test_directory_knows_every_principal_in_the_logs(tenant, audit):
    snapshot = DirectorySnapshot.load(tenant / "directory.json")
    known = {sp.id for sp in snapshot.servicePrincipals}
    _, _, run = audit
    assert {f.principal_id for f in run.findings} <= known
    payroll = next(app for app in snapshot.applications if app.displayName == "payroll-sync")
    assert "sync-2026" in [secret.displayName for secret in payroll.passwordCredentials]


def test_too_small_a_tenant_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"at least \d+ service principals"):
        generate(tmp_path, service_principals=3)


def _sessions_a_day(logs: Path, names: set[str]) -> Counter[tuple[str, str]]:
    """Sign-ins that open a session (not the Key Vault token an application gets on the side), by principal and
    day, for the principals named."""
    counts: Counter[tuple[str, str]] = Counter()
    for path in logs.glob("insights-logs-*signinlogs/**/PT1H.json"):
        for line in path.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            properties = record["properties"]
            side_token = (record["category"] == "ServicePrincipalSignInLogs"
                          and properties["resourceDisplayName"] == "Azure Key Vault")
            if properties["servicePrincipalName"] in names and not side_token:
                counts[(properties["servicePrincipalName"], record["time"][:10])] += 1
    return counts


def test_a_busier_tenant_signs_in_as_often_as_asked_with_the_same_stories(tmp_path):
    usual = generate(tmp_path / "usual", seed=7, service_principals=MIN_SERVICE_PRINCIPALS + 6, days=8)
    busier = generate(tmp_path / "busier", seed=7, service_principals=MIN_SERVICE_PRINCIPALS + 6, days=8,
                      sign_ins_per_day=12)
    assert busier["scenarios"] == usual["scenarios"]
    story_names = {name for _, name, _ in all_stories()[1]}
    snapshot = DirectorySnapshot.load(tmp_path / "busier" / "directory.json")
    background = {sp.displayName for sp in snapshot.servicePrincipals if sp.appOwnerOrganizationId != MICROSOFT_TENANT
                  and sp.displayName not in story_names}
    full_days = {(SAMPLE_NOW - timedelta(days=back)).strftime("%Y-%m-%d") for back in range(1, 9)}
    busy = _sessions_a_day(tmp_path / "busier" / "logs", background)
    assert len(background) == 6
    assert {count for (_, day), count in busy.items() if day in full_days} <= {11, 12, 13}
    assert len([key for key in busy if key[1] in full_days]) == 6 * 8
