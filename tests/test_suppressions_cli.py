"""The suppression workflow on the command line: `findings suppress` writes a valid file for review, and
`wiaudit detect` applies the suppressions offline, showing the suppressed findings apart and counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.catalog.loader import rule_names
from shared.cli import app
from shared.store import TableFindingStore
from shared.suppressions.load import load_suppressions

runner = CliRunner(env={"COLUMNS": "200"})
NEW_NETWORK = "workload_signin_new_network"


@pytest.fixture
def stored(azurite, table_service, make_finding, tmp_path, monkeypatch):
    """A finding in the store the CLI reads (FINDINGS_CONNECTION_STRING), and an empty suppressions folder."""
    store = TableFindingStore(table_service, prefix="wiaudit", channels=("teams", "email"))
    store.ensure_tables()
    detection_id = next(rule.id for rule in rule_names() if NEW_NETWORK in rule.names)
    finding = make_finding("7c0e8a51-build", detection=detection_id, principal_name="build agent")
    store.upsert_findings([finding], "run-1", datetime.now(UTC))
    folder = tmp_path / "suppressions"
    folder.mkdir()
    monkeypatch.setenv("FINDINGS_CONNECTION_STRING", azurite.connection_string)
    monkeypatch.setenv("SUPPRESSIONS_PATH", str(folder))
    return finding, folder


def test_findings_suppress_writes_the_narrowest_valid_file(stored):
    finding, folder = stored
    until = (datetime.now(UTC) + timedelta(days=90)).date()
    result = runner.invoke(app, ["findings", "suppress", finding.id[:12], "--reason", "the agent pool moved",
                                 "--until", until.isoformat(), "--owner", "alice@contoso.com"])
    assert result.exit_code == 0, result.output
    [path] = folder.glob("*.yaml")
    assert path.name == f"{NEW_NETWORK}-build-agent.yaml" and str(path) in result.output.replace("\n", "")
    [suppression] = load_suppressions(folder, rule_names(), datetime.now(UTC).date())
    assert suppression.match.given() == {"principal": (finding.principal_id,)}
    assert (suppression.reason, suppression.owner, suppression.until) == ("the agent pool moved",
                                                                         "alice@contoso.com", until)
    [marked] = load_suppressions(folder, rule_names(), datetime.now(UTC).date()).apply([finding], datetime.now(UTC))
    assert marked.suppression.id == path.stem
    neighbour = finding.model_copy(update={"principal_id": "7c0e8a51-other", "principal_name": "other"})
    assert load_suppressions(folder, rule_names(), datetime.now(UTC).date()).apply(
        [neighbour], datetime.now(UTC))[0].suppression is None


def test_findings_suppress_refuses_what_would_not_load(stored):
    finding, folder = stored
    too_far = (datetime.now(UTC) + timedelta(days=400)).date().isoformat()
    result = runner.invoke(app, ["findings", "suppress", finding.id, "--reason", "r", "--until", too_far])
    assert result.exit_code == 2 and "more than a year ahead" in result.output
    unknown = runner.invoke(app, ["findings", "suppress", "0" * 32, "--reason", "r", "--until", "2026-01-01"])
    assert unknown.exit_code == 2 and "unknown finding 00000000" in unknown.output
    assert list(folder.iterdir()) == []


def test_detect_applies_suppressions_offline_and_counts_them(sample_tenant, tmp_path: Path):
    folder = tmp_path / "suppressions"
    folder.mkdir()
    (folder / "billing-egress.yaml").write_text(
        f"detections: [{NEW_NETWORK}]\nmatch: {{principal: deploy-billing}}\nreason: new hosting provider\n"
        f"owner: ops@contoso.com\nuntil: {(datetime.now(UTC) + timedelta(days=30)).date()}\n", encoding="utf-8")
    arguments = ["detect", "--logs", str(sample_tenant / "logs"), "--now", "2026-03-15T00:00:00Z",
                 "--since", "2026-03-14T00:00:00Z"]
    plain = runner.invoke(app, arguments)
    quiet = runner.invoke(app, [*arguments, "--suppressions", str(folder)])
    assert "deploy-billing" in plain.output and "Suppressed" not in plain.output
    assert "Suppressed (1)" in quiet.output and "billing-egress" in quiet.output
    assert ", 1 suppressed" in quiet.output
    found = int(plain.output.split(" finding")[-2].split()[-1])
    assert f"{found - 1} finding" in quiet.output


def test_detect_refuses_a_bad_suppression_file(sample_tenant, tmp_path: Path):
    (tmp_path / "typo.yaml").write_text(f"detections: [{NEW_NETWORK}]\nmatch: {{principal: x}}\nreason: r\n"
                                        "owner: o\nuntil: 2026-01-01\nexpiry: 2026-01-01\n", encoding="utf-8")
    result = runner.invoke(app, ["detect", "--logs", str(sample_tenant / "logs"), "--suppressions", str(tmp_path)])
    assert result.exit_code == 2
    assert "typo.yaml: expiry: Extra inputs are not permitted" in result.output.replace("\n", "")
