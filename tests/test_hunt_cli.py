"""`wiaudit hunt` on the sample tenant: the seed blog's queries, stdin, Sentinel YAML, refusals named with their
position while the rest of a folder runs, and the exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import app

runner = CliRunner(env={"COLUMNS": "250"})
SEED_HUNTS = Path(__file__).parent.parent / "docs" / "hunts"
NOW = "2026-03-14T06:00:00Z"  # the day after the backdoor credential of the sample tenant


def hunt(tenant: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, ["hunt", *args, "--logs", str(tenant / "logs"), "--now", NOW], input=stdin)


def test_the_seed_blogs_two_queries_find_their_stories(sample_tenant):
    result = hunt(sample_tenant, str(SEED_HUNTS), "--format", "json")
    assert result.exit_code == 0, result.output
    outcomes = {Path(o["query"]).name: o for o in json.loads(result.stdout)}
    assert {o["status"] for o in outcomes.values()} == {"ran"}
    backdoor = outcomes["credential_added_to_signing_in_identity.kql"]["rows"]
    assert [(r["TargetName"], r["Actor"], r["ActorIPAddress"]) for r in backdoor] == [
        ("payroll-sync", "mallory@contoso.com", "185.220.101.47")]
    assert list(backdoor[0])[:5] == ["ChangeTime", "TargetName", "Actor", "ActorIPAddress", "HoursSinceLastSignIn"]
    failures = outcomes["sp_signin_failures.kql"]["rows"]
    assert {(r["ServicePrincipalName"], r["ErrorMeaning"]) for r in failures} == {
        ("nightly-export", "Expired client secret")}
    assert "2 queries: 2 ran, 0 refused, 0 failed" in result.stderr


def test_kql_from_stdin_reads_the_pinned_clock(sample_tenant):
    kql = 'AuditLogs | where TimeGenerated > ago(1d) | summarize n = count() | extend Now = now()'
    result = hunt(sample_tenant, "--format", "json", stdin=kql)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows[0]["Now"] == NOW and rows[0]["n"] > 0


def test_csv_of_one_query(sample_tenant):
    kql = ("AADServicePrincipalSignInLogs | where TimeGenerated > ago(1d) and ResultType == '7000222' "
           "| summarize Failures = count(), First = min(TimeGenerated) by ServicePrincipalName")
    result = hunt(sample_tenant, kql, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["ServicePrincipalName"] for r in rows] == ["nightly-export"]
    assert rows[0]["First"].endswith("Z") and int(rows[0]["Failures"]) > 0


def test_a_folder_runs_on_past_refusals_and_failures(sample_tenant, tmp_path):
    (tmp_path / "a_rule.yaml").write_text(
        "id: 1\nname: Failed service principal sign-ins\nkind: Scheduled\nquery: |\n"
        "  AADServicePrincipalSignInLogs\n  | where ResultType != \"0\" and TimeGenerated > ago(1d)\n"
        "  | summarize count() by ServicePrincipalName\n")
    (tmp_path / "b_refused.kql").write_text(
        "AuditLogs\n| where TimeGenerated > ago(1d)\n| mv-apply t = TargetResources on (summarize n = count())\n")
    (tmp_path / "c_unknown_table.kql").write_text("NoSuchTable | take 1\n")
    (tmp_path / "d_no_query.yaml").write_text("name: only a name\n")
    (tmp_path / "e_refused_function.kql").write_text(
        "AuditLogs\n| summarize Ops = make_set(OperationName),\n    Who = make_bag(bag_pack(Identity, Result))\n")
    (tmp_path / "f_refused_after_a_rewrite.kql").write_text(
        "AuditLogs | summarize makeset(OperationName) | mv-apply x = set_OperationName on (take 1)\n")
    result = hunt(sample_tenant, str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "Failed service principal sign-ins" in result.stdout and "nightly-export" in result.stdout
    assert "refused: " in result.stderr
    assert "mv-apply is not supported offline at line 3, column 3" in result.stderr
    assert "make_bag() is not supported offline at line 3, column 11" in result.stderr
    assert "c_unknown_table.kql" in result.stderr and "d_no_query.yaml has no `query` text" in result.stderr
    assert "f_refused_after_a_rewrite.kql: mv-apply is not supported offline at line 1, column 48" in result.stderr
    assert "6 queries: 1 ran, 3 refused, 2 failed" in result.stderr
    assert "wave" not in result.stderr  # duckdb-kql's notes to its own developers are not for the reader


def test_since_is_the_time_range_like_log_analytics(sample_tenant):
    ranged = hunt(sample_tenant, "AuditLogs | summarize n = count()", "--since", "2026-03-13T00:00:00Z",
                  "--format", "json")
    filtered = hunt(sample_tenant, "AuditLogs | where TimeGenerated between (datetime(2026-03-13) .. "
                    "datetime(2026-03-14T06:00:00Z)) | summarize n = count()", "--format", "json")
    everything = hunt(sample_tenant, "AuditLogs | summarize n = count()", "--format", "json")
    assert ranged.exit_code == filtered.exit_code == everything.exit_code == 0, ranged.output
    assert json.loads(ranged.stdout) == json.loads(filtered.stdout)
    assert json.loads(ranged.stdout)[0]["n"] < json.loads(everything.stdout)[0]["n"]


def test_since_after_now_is_bad_input(sample_tenant):
    assert hunt(sample_tenant, "AuditLogs | count", "--since", "2027-01-01T00:00:00Z").exit_code == 2


def test_no_rows_in_the_range_is_no_data_not_an_empty_answer(sample_tenant):
    result = runner.invoke(app, ["hunt", "AuditLogs | count", "--logs", str(sample_tenant / "logs"),
                                 "--now", "2020-01-02T00:00:00Z", "--since", "2020-01-01T00:00:00Z"])
    assert result.exit_code == 3 and "no data" in result.stderr


def test_csv_of_a_folder_is_refused(sample_tenant):
    result = hunt(sample_tenant, str(SEED_HUNTS), "--format", "csv")
    assert result.exit_code == 2 and "csv takes one query" in result.output
