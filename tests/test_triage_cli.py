"""`wiaudit findings show|ack|resolve|reopen|comment`: ids by unique prefix, triage into the history, and a
finding that explains itself (evidence, filled-in query, ATT&CK and portal links, remediation)."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from typer.testing import CliRunner

from shared.catalog.loader import load_catalog
from shared.cli import app
from shared.findings import Finding
from shared.posture.catalog import load_checks

runner = CliRunner(env={"COLUMNS": "250"})
START = datetime(2026, 3, 14, tzinfo=UTC)
NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
SP_ID, APP_ID = "0d6f3a2e-8a51-4c1e-9b7d-3e2f1a0b9c8d", "5b0f4d34-00d0-472d-8fb9-b72eea4c547e"


@pytest.fixture
def stored(finding_store, monkeypatch):
    """Findings of a real catalog rule and a posture check, and ids sharing prefixes; the command gets this store."""
    detection = load_catalog().get("new_credential_added")
    check = load_checks().get("expired_credentials")
    context = {"deleted": False, "service_principal_id": SP_ID, "app_id": APP_ID, "application_object_id": "a-1",
               "display_name": "payroll-sync", "type": "application"}
    findings = [
        Finding(detection_id=detection.id, detection_name=detection.name, severity="Medium", principal_id=SP_ID,
                principal_name="payroll-sync", entities={"Account.AadUserId": SP_ID, "Key": f"k{n}"},
                window_start=START, window_end=START + timedelta(days=1), summary="A key was added",
                evidence={"KeyName": f"backdoor-{n}", "AddedBy": "mallory@contoso.com", "IPs": ["203.0.113.7"]},
                context=context)
        for n in range(40)
    ]
    findings.append(Finding(detection_id=check.id, detection_name=check.name, severity="Low", principal_id=SP_ID,
                            principal_name="payroll-sync", entities={"Account.AadUserId": SP_ID, "KeyId": "k-old"},
                            window_start=START, window_end=START + timedelta(days=1), evidence={"Status": "expired"},
                            context=context))
    finding_store.upsert_findings(findings, "run-1", NOW)

    @contextmanager
    def this_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", this_store)
    monkeypatch.delenv("FINDINGS_CONNECTION_STRING", raising=False)
    return findings


def _unique_prefix(ids: list[str], finding_id: str) -> str:
    return next(finding_id[:n] for n in range(1, 33) if sum(other.startswith(finding_id[:n]) for other in ids) == 1)


def _shared_prefix(ids: list[str]) -> str:
    """A one-character prefix at least two of the ids start with (40 ids over 16 hex digits)."""
    return next(first for first in "0123456789abcdef" if sum(i.startswith(first) for i in ids) > 1)


def test_triage_verbs_take_a_unique_prefix_and_record_who_and_why(stored, finding_store):
    ids = [finding.id for finding in stored]
    target = ids[0]
    prefix = _unique_prefix(ids, target)
    result = runner.invoke(app, ["findings", "ack", prefix, "-m", "asked the owner", "--by", "alice@contoso.com"])
    assert result.exit_code == 0, result.output
    assert "new → acknowledged with a comment, by alice@contoso.com" in result.stdout
    assert runner.invoke(app, ["findings", "comment", target.upper(), "owner confirms: CI key",
                               "--by", "bob"]).exit_code == 0
    result = runner.invoke(app, ["findings", "resolve", prefix, "--false-positive", "--by", "carol"])
    assert result.exit_code == 0 and "acknowledged → false_positive, by carol" in result.stdout
    stored_finding = finding_store.get_finding(target)
    assert (stored_finding.status, stored_finding.comment) == ("false_positive", "owner confirms: CI key")
    assert [(e.by, e.field, e.from_, e.to, e.comment) for e in stored_finding.history] == [
        ("alice@contoso.com", "status", "new", "acknowledged", "asked the owner"),
        ("bob", "comment", None, None, "owner confirms: CI key"),
        ("carol", "status", "acknowledged", "false_positive", ""),
    ]
    assert runner.invoke(app, ["findings", "reopen", target, "--by", "dave"]).exit_code == 0
    assert finding_store.get_finding(target).status == "new"
    assert runner.invoke(app, ["findings", "resolve", target, "--by", "dave"]).exit_code == 0
    assert finding_store.get_finding(target).status == "resolved"


def test_an_ambiguous_prefix_lists_the_candidates_and_an_unknown_one_says_so(stored, finding_store):
    ids = [finding.id for finding in stored]
    shared = _shared_prefix(ids)
    result = runner.invoke(app, ["findings", "ack", shared, "--by", "alice"])
    assert result.exit_code == 2
    matching = [i for i in ids if i.startswith(shared)]
    assert all(i in result.output for i in sorted(matching)[:20]) and f"ambiguous finding {shared}" in result.output
    assert all(finding_store.get_finding(i).status == "new" for i in matching)  # nothing was triaged
    unknown = next(p for p in ("0" * 8, "f" * 8) if not any(i.startswith(p) for i in ids))
    for args in (["ack", unknown], ["show", unknown], ["comment", "not-hex!", "x"]):
        result = runner.invoke(app, ["findings", *args, "--by", "alice"] if args[0] != "show" else ["findings", *args])
        assert result.exit_code == 2 and "unknown finding" in result.output, result.output


def test_by_defaults_to_the_git_email_else_the_os_user(stored, finding_store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("USER", "opsuser")
    monkeypatch.setenv("LOGNAME", "opsuser")
    target = stored[1].id
    assert runner.invoke(app, ["findings", "comment", target, "no git email here"]).exit_code == 0
    (tmp_path / "gitconfig").write_text("[user]\n\temail = ana@contoso.com\n")
    assert runner.invoke(app, ["findings", "comment", target, "with a git email"]).exit_code == 0
    assert [entry.by for entry in finding_store.get_finding(target).history] == ["opsuser", "ana@contoso.com"]


def test_show_explains_the_finding(stored):
    finding = stored[2]
    result = runner.invoke(app, ["findings", "show", finding.id])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Medium New credential added to an application or service principal · new" in out
    assert "backdoor-2" in out and "mallory@contoso.com" in out and "203.0.113.7" in out  # the evidence rows
    assert ("let WindowStart = datetime(2026-03-14T00:00:00.000000Z); "
            "let WindowEnd = datetime(2026-03-15T00:00:00.000000Z); let IdentityLookback = 13d;") in out
    assert "| where OperationName has \"Certificates and secrets management\"" in out
    assert "T1098.001  https://attack.mitre.org/techniques/T1098/001/" in out
    assert "https://attack.mitre.org/techniques/T1550/001/" in out
    assert ("https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/~/Overview/"
            f"appId/{APP_ID}") in out
    assert (f"https://entra.microsoft.com/#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/objectId/{SP_ID}"
            f"/appId/{APP_ID}") in out
    assert f"Sign-in logs (filter by application id {APP_ID}): https://entra.microsoft.com/#view/" in out
    assert "What to do" in out and "az ad app credential delete" in out  # the rule's remediation


def test_show_of_a_posture_finding_has_remediation_but_no_query_and_json_carries_it_all(stored):
    posture = stored[-1]
    result = runner.invoke(app, ["findings", "show", posture.id])
    assert result.exit_code == 0, result.output
    assert "Remove the expired credential" in result.stdout and "let WindowStart" not in result.stdout
    result = runner.invoke(app, ["findings", "show", stored[3].id, "--json"])
    document = json.loads(result.stdout)
    assert document["id"] == stored[3].id and document["history"] == []
    explanation = document["explanation"]
    assert explanation["query"].startswith("let WindowStart = datetime(2026-03-14T00:00:00.000000Z);")
    assert {"title": "T1098.001", "url": "https://attack.mitre.org/techniques/T1098/001/"} in explanation["techniques"]
    assert "az ad app credential delete" in explanation["remediation"]
    assert [link["title"] for link in explanation["portal"]] == ["App registration", "Enterprise app",
                                                                 "Sign-in logs"]


def test_show_of_a_control_path_gives_each_path_a_line(finding_store, monkeypatch):
    from shared.posture.run import evaluate
    from shared.posture.usage import SignInUsage

    check = load_checks().get("control_paths_to_tier0")
    case = check.tests[0]
    result = evaluate([check], case.snapshot(), SignInUsage(read_from=case.now, read_until=case.now), case.now,
                      {check.id: check.values()})
    finding = next(f for f in result.findings
                   if f.principal_name == "tenant-automation" and f.evidence["PathCount"] == 2)
    finding_store.upsert_findings([finding], "run-1", NOW)

    @contextmanager
    def this_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", this_store)
    monkeypatch.delenv("FINDINGS_CONNECTION_STRING", raising=False)
    shown = CliRunner(env={"COLUMNS": "700"}).invoke(app, ["findings", "show", finding.id])
    assert shown.exit_code == 0, shown.output
    lines = [line for line in shown.stdout.splitlines() if "tenant-automation (tier 0: holds" in line]
    assert len(lines) == 3  # the summary, then each of the two paths on a line of its own in the evidence
    assert lines[1].rstrip(" │").endswith("<- user bob@contoso.com owns deploy-bot's application")
    assert lines[2].rstrip(" │").endswith("application and holds Application.ReadWrite.OwnedBy")
