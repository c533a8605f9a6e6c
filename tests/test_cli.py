"""The wiaudit commands, run the way a user runs them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.cli import app
from shared.local.project_azurite import ProjectAzurite

ALL_FOUND = re.compile(r"\b(\d+) of \1 expected findings of the \d+ injected stories found")
runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="session")
def tenant(sample_tenant) -> Path:
    return sample_tenant


def _scenario(tenant: Path, scenario_id: str) -> dict:
    manifest = json.loads((tenant / "manifest.json").read_text())
    return next(s for s in manifest["scenarios"] if s["id"] == scenario_id)


def test_detections_list_and_markdown():
    table = runner.invoke(app, ["detections", "list"])
    markdown = runner.invoke(app, ["detections", "list", "--markdown"])
    assert table.exit_code == 0 and "Service principal sign-in failures" in table.output
    assert markdown.output.startswith("| Detection | Kind | Severity | Tables | Tactics |")
    assert "| Posture |" in markdown.output and "| Scheduled |" in markdown.output


def test_detections_test_one_and_unknown():
    one = runner.invoke(app, ["detections", "test", "sp_signin_failures"])
    unknown = runner.invoke(app, ["detections", "test", "no_such_rule"])
    assert one.exit_code == 0 and "all detection tests passed" in one.output
    assert one.output.count("pass ") == 3
    assert unknown.exit_code == 2 and "unknown detection no_such_rule" in unknown.output


def test_detections_validate():
    result = runner.invoke(app, ["detections", "validate"])
    assert result.exit_code == 0, result.output
    assert "INVALID" not in result.output and result.output.count("valid ") >= 5


def test_detect_prints_findings_as_json(tenant):
    # Whole days: a 6-hour tail with no directory change would leave the AuditLogs rules evaluated in part (exit 4).
    result = runner.invoke(app, ["detect", "--logs", str(tenant / "logs"), "--now", "2026-03-15T00:00:00Z",
                                 "--since", "2026-03-12T00:00:00Z", "--json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    expired = _scenario(tenant, "expired-secret")
    assert any(f["principal_id"] == expired["principal_id"] and f["detection_name"] ==
               "Service principal sign-in failures" for f in findings)


@pytest.mark.parametrize(("arguments", "message"), [
    (["--now", "yesterday"], "'yesterday' is not a date and time"),
    (["--now", "2026-03-15T00:00:00Z", "--since", "2026-03-16T00:00:00Z"], "--since must be before --now"),
])
def test_detect_rejects_bad_times(tenant, arguments, message):
    result = runner.invoke(app, ["detect", "--logs", str(tenant / "logs"), *arguments])
    assert result.exit_code == 2 and message in result.output


def test_detect_rejects_a_missing_folder(tmp_path):
    result = runner.invoke(app, ["detect", "--logs", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "is not a folder" in result.output


def test_trail_fills_the_ip_of_a_directory_change_from_the_sign_in(tenant):
    automation = _scenario(tenant, "automation-role-change")
    result = runner.invoke(app, ["trail", automation["principal_id"], "--logs", str(tenant / "logs"),
                                 "--now", "2026-03-15T06:00:00Z", "--since", "2026-03-14T00:00:00Z"])
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if "Add member to role" in line)
    assert "(from sign-in)" in line and "20." in line


def test_sample_tenant_refuses_a_non_empty_folder(tenant):
    result = runner.invoke(app, ["sample-tenant", "--out", str(tenant)])
    assert result.exit_code == 2 and "is not empty" in result.output


@pytest.fixture
def own_home(tmp_path, monkeypatch) -> Iterator[Path]:
    """A fresh local home (store, outbox) for this test; its Azurite is stopped at the end."""
    home = tmp_path / "home"
    monkeypatch.setenv("WIAUDIT_HOME", str(home))
    yield home
    ProjectAzurite(home).stop()


def test_demo_runs_the_whole_product_and_a_second_run_finds_nothing_new(tenant, own_home):
    first = runner.invoke(app, ["demo", "--tenant", str(tenant)])
    second = runner.invoke(app, ["demo", "--tenant", str(tenant)])
    assert first.exit_code == 0, first.output
    assert ALL_FOUND.search(first.output) and "missed:" not in first.output and "Digest:" in first.output
    outbox = sorted(path.name for path in (own_home / "outbox").iterdir())
    digests = [name for name in outbox if "-notice." not in name]
    assert [name.rsplit("-", 1)[1] for name in digests] == ["email.html", "email.txt", "teams.json"]
    assert [name for name in outbox if name.endswith("-notice.txt")], "each owner's notice is in the outbox"
    assert second.exit_code == 0, second.output
    assert "Nothing new since the last run" in second.output and ALL_FOUND.search(second.output)
    assert "-notice." in first.output and "-notice." not in second.output  # told once, not again
    dry_run = runner.invoke(app, ["notices", "--dry-run"])
    assert dry_run.exit_code == 0 and "Nobody would get a notice" in dry_run.output, dry_run.output
    listed = runner.invoke(app, ["findings", "list", "--severity", "medium", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {f["severity"] for f in json.loads(listed.stdout)} <= {"Medium", "High"}


def test_demo_with_the_risk_rules_turned_off_expects_no_risk_story_and_names_them(tenant, own_home, monkeypatch):
    monkeypatch.setenv("DISABLED_DETECTIONS",
                       "microsoft_risky_service_principal, microsoft_service_principal_risk_events")
    result = runner.invoke(app, ["demo", "--tenant", str(tenant)])
    assert result.exit_code == 0, result.output
    assert "missed:" not in result.output and ALL_FOUND.search(result.output)
    assert "turned off by DISABLED_DETECTIONS: Microsoft Entra ID Protection rates a service principal risky and " \
           "Microsoft Entra ID Protection flagged a risk on a service principal" in " ".join(result.output.split())
    [teams] = (own_home / "outbox").glob("*-teams.json")
    assert "turned off by DISABLED_DETECTIONS" in teams.read_text(encoding="utf-8")
    listed = runner.invoke(app, ["findings", "list", "--json", "--limit", "500"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)
    assert not any(f["detection_name"].startswith("Microsoft Entra ID Protection") for f in json.loads(listed.stdout))


def test_serve_refuses_to_start_without_an_api_key(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WIAUDIT_API_KEY", raising=False)
    result = runner.invoke(app, ["serve", "--port", "7398"])
    assert result.exit_code == 2 and "WIAUDIT_API_KEY" in result.output
