"""Run a detection's own tests: load its rows into a fresh embedded database, run the query
for the test's window, and compare the output with the expected rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from shared.catalog.model import Detection, DetectionTest
from shared.catalog.render import render
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.values import parse_datetime
from shared.tables import table_schemas

RuleT = TypeVar("RuleT")
CaseT = TypeVar("CaseT")


@dataclass(frozen=True)
class TestOutcome(Generic[RuleT, CaseT]):
    """One test case of a rule (a detection or a posture check) and what went wrong, if anything."""

    detection: RuleT
    test: CaseT
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def run_tests(detection: Detection) -> list[TestOutcome[Detection, DetectionTest]]:
    return [run_test(detection, test) for test in detection.tests]


def run_test(detection: Detection, test: DetectionTest) -> TestOutcome[Detection, DetectionTest]:
    database = LogDatabase()
    problems = _unknown_columns(test)
    problems += [f"row {problem}" for table, rows in test.rows.items()
                 for problem in database.insert(table, ((None, row) for row in rows))]
    source = EmbeddedLogSource(database, now=test.window.end)
    try:
        actual = source.query(render(detection, test.window.start, test.window.end, test.parameters),
                              test.window.start, test.window.end)
    except Exception as error:  # a query failure is this test's failure, reported with the others
        return TestOutcome(detection, test, (*problems, f"query failed: {error}"))
    return TestOutcome(detection, test, tuple(problems + compare_rows(test.expect, actual)))


def beyond_lookback(detection: Detection, test: DetectionTest) -> DetectionTest:
    """The case again, with a copy of its rows from before the window's end moved back until the latest lies just
    before the window's lookback start. A rule that reads no further back than its lookback (all Log Analytics
    lets it read, and what skipping quiet windows relies on) gives the case's answer; one that reads further sees
    the copies."""
    reach = test.window.start - detection.lookback_span
    dated = [(table, row, parse_datetime(row["TimeGenerated"])) for table, rows in test.rows.items() for row in rows
             if row.get("TimeGenerated") is not None]
    dated = [(table, row, moment) for table, row, moment in dated if moment < test.window.end]
    if not dated:
        return test
    shift = max(moment for _, _, moment in dated) - reach + timedelta(microseconds=1)
    rows = {table: list(table_rows) for table, table_rows in test.rows.items()}
    for table, row, moment in dated:
        rows[table].append({**row, "TimeGenerated": (moment - shift).isoformat()})
    return test.model_copy(update={"name": f"{test.name}, with its rows again before the lookback", "rows": rows})


def _unknown_columns(test: DetectionTest) -> list[str]:
    """A misspelt column in a test row would be dropped on load and the case would prove nothing."""
    schemas = table_schemas()
    return [f"rows.{table}: {column!r} is not a column of {table}"
            for table, rows in test.rows.items() if table in schemas and table != "AzureDiagnostics"
            for column in sorted({name for row in rows for name in row} - set(schemas[table].columns))]


def compare_rows(expected: list[dict[str, Any]], actual: list[dict[str, Any]]) -> list[str]:
    """Each expected row must match one output row on the columns it names; no row may be left over."""
    remaining = list(actual)
    problems = []
    for row in expected:
        match = next((candidate for candidate in remaining if _matches(row, candidate)), None)
        if match is None:
            problems.append(f"expected row not in output: {_show(row)}")
        else:
            remaining.remove(match)
    problems += [f"unexpected output row: {_show(row)}" for row in remaining]
    return problems


def _matches(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    return all(column in actual and _same(value, actual[column]) for column, value in expected.items())


def _same(expected: Any, actual: Any) -> bool:
    return _normal(expected) == _normal(actual)


def _normal(value: Any) -> Any:
    """Compare datetimes as instants, numbers as numbers, and lists (KQL sets) in any order."""
    if isinstance(value, datetime):
        return parse_datetime(value).isoformat()
    if isinstance(value, str):
        try:
            return parse_datetime(value).isoformat() if "T" in value and value[:4].isdigit() else value
        except ValueError:
            return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, list):
        return sorted((_normal(item) for item in value), key=lambda item: json.dumps(item, default=str))
    if isinstance(value, dict):
        return {key: _normal(item) for key, item in value.items()}
    return value


def _show(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, sort_keys=True)
