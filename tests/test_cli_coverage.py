"""No silent all-clear: `wiaudit detect` reports coverage, names what it could not evaluate and exits distinctly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.catalog.loader import load_catalog
from shared.cli import app, exit_codes

runner = CliRunner(env={"COLUMNS": "250"})
RANGE = ["--now", "2026-03-15T06:00:00Z", "--since", "2026-03-12T00:00:00Z"]
CATALOG = load_catalog()
NOT_AUDIT_LOGS_ONLY = [d for d in CATALOG if set(d.tables) != {"AuditLogs"}]
NOT_EVALUATED_LINE = f"{len(NOT_AUDIT_LOGS_ONLY)} of {len(CATALOG)} detections not evaluated"


@pytest.fixture(scope="module")
def audit_logs_only(sample_tenant, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("audit-logs-only")
    shutil.copy(sample_tenant / "logs" / "AuditLogs.json", folder / "AuditLogs.json")
    return folder


def test_an_audit_logs_only_folder_reports_the_detections_it_could_not_evaluate(audit_logs_only):
    result = runner.invoke(app, ["detect", "--logs", str(audit_logs_only), *RANGE])
    assert result.exit_code == exit_codes.NOT_EVALUATED, result.output
    table_line = next(line for line in result.output.splitlines() if "│ AuditLogs" in line)
    assert "2026-03-1" in table_line and "UTC" in table_line
    failures = "not evaluated: Service principal sign-in failures (no rows in AADServicePrincipalSignInLogs)"
    assert failures in result.output
    assert "not evaluated: Service principal added to a privileged directory role" not in result.output
    assert NOT_EVALUATED_LINE in result.output and len(NOT_AUDIT_LOGS_ONLY) >= 19
    assert "0 finding(s)" not in result.output


def test_json_output_stays_parseable_and_the_coverage_goes_to_stderr(audit_logs_only):
    result = runner.invoke(app, ["detect", "--logs", str(audit_logs_only), *RANGE, "--json"])
    assert result.exit_code == exit_codes.NOT_EVALUATED
    assert isinstance(json.loads(result.stdout), list)
    assert NOT_EVALUATED_LINE in result.stderr


def test_an_empty_folder_evaluates_nothing_and_says_so(tmp_path):
    result = runner.invoke(app, ["detect", "--logs", str(tmp_path), *RANGE])
    assert result.exit_code == exit_codes.NO_DATA, result.output
    assert "nothing evaluated: no known log table" in result.output
    assert "finding(s)" not in result.output


def test_an_unrelated_folder_names_the_files_that_match_no_table(tmp_path):
    (tmp_path / "inventory.json").write_text('{"hostname": "web-1", "cpu": 4}\n')
    (tmp_path / "notes.txt").write_text("not a log\n")
    (tmp_path / "exports").mkdir()
    (tmp_path / "exports" / "sales.csv").write_text("region,total\nwest,3\n")
    result = runner.invoke(app, ["detect", "--logs", str(tmp_path), *RANGE])
    assert result.exit_code == exit_codes.NO_DATA, result.output
    assert "3 files matched no known log table" in result.output
    for name in ("inventory.json", "notes.txt", "sales.csv"):
        assert name in result.output


def test_logs_outside_the_range_evaluate_nothing(audit_logs_only):
    result = runner.invoke(app, ["detect", "--logs", str(audit_logs_only), "--now", "2025-01-02T00:00:00Z",
                                 "--since", "2025-01-01T00:00:00Z"])
    assert result.exit_code == exit_codes.NO_DATA, result.output
    assert "matched no known log table" not in result.output


def test_the_help_documents_the_exit_codes():
    result = runner.invoke(app, ["detect", "--help"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output and "no known log table had rows" in result.output
