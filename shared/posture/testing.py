"""Run a posture check's own tests: its directory fragment and usage, judged as of the test's
`now`, must give exactly the expected findings (by principal and credential key id)."""

from __future__ import annotations

import json
from typing import Any

from shared.catalog.testing import TestOutcome, compare_rows
from shared.findings import Finding
from shared.posture.catalog import CheckTest, PostureCheck
from shared.posture.run import evaluate

CheckTestOutcome = TestOutcome[PostureCheck, CheckTest]


def run_check_tests(check: PostureCheck) -> list[CheckTestOutcome]:
    return [run_check_test(check, test) for test in check.tests]


def run_check_test(check: PostureCheck, test: CheckTest) -> CheckTestOutcome:
    try:
        params = {check.id: check.values(test.parameters)}
        result = evaluate([check], test.snapshot(), test.usage.usage(test.now), test.now, params)
    except Exception as error:  # a crash is this test's failure, reported with the others
        return CheckTestOutcome(check, test, (f"check failed: {type(error).__name__}: {error}",))
    problems = [f"check failed: {message}" for message in result.errors.values()]
    expected = [_expected_row(item.model_dump(exclude_none=True)) for item in test.expect]
    return CheckTestOutcome(check, test, tuple(problems + compare_rows(expected, [_row(f) for f in result.findings])))


def _expected_row(expected: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"principal": expected["principal"], "keyId": expected.get("keyId")}
    if "severity" in expected:
        row["severity"] = expected["severity"]
    for key, value in expected.get("evidence", {}).items():
        row[f"evidence.{key}"] = value
    return row


def _row(finding: Finding) -> dict[str, Any]:
    row: dict[str, Any] = {"principal": finding.principal_id, "keyId": finding.entities.get("Credential.KeyId"),
                           "severity": finding.severity, "summary": finding.summary}
    row.update({f"evidence.{key}": json.loads(json.dumps(value, default=str))
                for key, value in finding.evidence.items()})
    return row
