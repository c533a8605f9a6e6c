"""Generic checks over every detection in the catalog (one test per concern, every offender listed)."""

from __future__ import annotations

import re

import pytest

from shared.catalog.attack import tactics_of
from shared.catalog.loader import DETECTIONS_DIR, load_catalog
from shared.catalog.testing import compare_rows, run_test
from shared.catalog.validation import validate_catalog
from shared.kql.validator import validate_queries
from shared.posture.catalog import load_checks
from shared.trail import TRAIL_QUERIES

CATALOG = load_catalog()
CASES = [(detection, test) for detection in CATALOG for test in detection.tests]


def _label(detection) -> str:
    return f"{CATALOG.paths[detection.id].stem} - {detection.name}"


@pytest.mark.parametrize(("detection", "case"), CASES,
                         ids=[f"{CATALOG.paths[d.id].stem}::{t.name}" for d, t in CASES])
def test_detection_case(detection, case):
    outcome = run_test(detection, case)
    assert outcome.passed, "\n".join(outcome.problems)


def test_every_query_passes_microsofts_kusto_parser():
    problems = validate_catalog(CATALOG)
    offenders = {_label(d): problems[d.id] for d in CATALOG if problems[d.id]}
    assert not offenders, offenders


def test_file_names_are_snake_case_and_names_unique():
    bad_files = [str(path) for path in CATALOG.paths.values() if not re.fullmatch(r"[a-z0-9_]+", path.stem)]
    names = [d.name for d in CATALOG]
    assert not bad_files
    assert len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


def test_techniques_are_known_and_belong_to_a_declared_tactic():
    offenders = []
    for detection in CATALOG:
        for technique in detection.relevantTechniques:
            tactics = tactics_of(technique)
            if not tactics:
                offenders.append(f"{_label(detection)}: unknown technique {technique}")
            elif not set(tactics) & set(detection.tactics):
                offenders.append(f"{_label(detection)}: {technique} belongs to {tactics}, none declared")
    assert not offenders, offenders


def test_high_severity_rules_explain_themselves():
    offenders = [_label(d) for d in CATALOG if d.severity == "High" and len(d.description) < 200]
    assert not offenders, "High severity needs a description a triager can act on"


def test_high_and_medium_rules_say_what_to_do():
    """Every detection and posture check that is (or can be raised to) High or Medium has a `remediation:`."""
    checks = load_checks()
    rules = [(CATALOG.paths[d.id], d, d.severityWhenPrivileged) for d in CATALOG]
    rules += [(checks.paths[c.id], c, None) for c in checks]
    offenders = [f"{path.stem} - {rule.name} ({rule.severity})" for path, rule, raised in rules
                 if {rule.severity, raised} & {"High", "Medium"} and not (rule.remediation or "").strip()]
    assert not offenders, "add a `remediation:` (what to do about a finding) to: " + "; ".join(offenders)


def test_every_yaml_file_in_the_folder_is_loaded():
    assert len(CATALOG) == len(list(DETECTIONS_DIR.glob("*.yaml")))


def test_trail_queries_pass_microsofts_kusto_parser():
    header = ('let Principals = dynamic(["x", "y"]); let WindowStart = datetime(2026-01-01T00:00:00Z); '
              "let WindowEnd = datetime(2026-01-02T00:00:00Z); let TokenLifetime = 1d;")
    checks = validate_queries(list(TRAIL_QUERIES.items()), headers=dict.fromkeys(TRAIL_QUERIES, header))
    offenders = {name: check.errors for name, check in checks.items() if check.errors}
    assert not offenders, offenders


def test_comparison_reports_missing_and_unexpected_rows():
    actual = [{"A": 1, "B": ["x", "y"]}, {"A": 2, "B": []}]
    assert compare_rows([{"A": 1, "B": ["y", "x"]}, {"A": 2}], actual) == []
    problems = compare_rows([{"A": 1, "B": ["x"]}], actual)
    assert any(p.startswith("expected row not in output") for p in problems)
    assert sum(p.startswith("unexpected output row") for p in problems) == 2


def test_a_wrong_expectation_fails_the_case():
    detection = CATALOG.get("sp_signin_failures")
    firing = next(case for case in detection.tests if case.expect)
    wrong = firing.model_copy(update={"expect": [{**firing.expect[0], "FailureCount": 99}]})
    assert not run_test(detection, wrong).passed


def test_a_misspelt_column_in_test_rows_fails_the_case():
    detection = CATALOG.get("sp_signin_failures")
    silent = next(case for case in detection.tests if not case.expect)
    rows = [{**row, "ResultTyp": "0"} for row in silent.rows["AADServicePrincipalSignInLogs"]]
    typo = silent.model_copy(update={"rows": {"AADServicePrincipalSignInLogs": rows}})
    problems = run_test(detection, typo).problems
    assert problems == ("rows.AADServicePrincipalSignInLogs: 'ResultTyp' is not a column of "
                        "AADServicePrincipalSignInLogs",)
