"""A rule reads no further back than its lookback: Log Analytics gives a query only `lookback` before its window,
and `detect` and the audit skip a window whose tables hold no row from there to its end. Every case of every rule
is run again with its rows copied to just before that point, and must give the same answer."""

from __future__ import annotations

from datetime import timedelta

from shared.catalog.loader import load_catalog
from shared.catalog.testing import beyond_lookback, run_test
from shared.logsource.values import parse_datetime

CATALOG = load_catalog()
NEW_NETWORK = next(d for d in CATALOG if d.name == "Workload identity signed in from a new IP, network or country")


def _reading_too_far(detection) -> list[str]:
    return [f"{detection.id} - {detection.name}: {test.name}: {problem}" for test in detection.tests
            for problem in run_test(detection, beyond_lookback(detection, test)).problems]


def test_no_rule_reads_further_back_than_its_lookback():
    offenders = [line for detection in CATALOG for line in _reading_too_far(detection)]
    assert not offenders, "\n".join(offenders)


def test_a_rule_that_reads_an_hour_beyond_its_lookback_is_caught():
    assert NEW_NETWORK.lookback == "13d" and NEW_NETWORK.parameters["BaselinePeriod"].default == "13d"
    assert not _reading_too_far(NEW_NETWORK)
    declared_short = NEW_NETWORK.model_copy(update={"lookback": "311h"})  # its query still reads 13 days = 312 h
    assert _reading_too_far(declared_short)


def test_the_latest_copy_lies_just_before_the_lookback_start():
    case = NEW_NETWORK.tests[0]
    copied = beyond_lookback(NEW_NETWORK, case)
    copies = [parse_datetime(row["TimeGenerated"]) for table, rows in copied.rows.items()
              for row in rows[len(case.rows[table]):]]
    dated = [row for rows in case.rows.values() for row in rows
             if parse_datetime(row["TimeGenerated"]) < case.window.end]
    assert len(copies) == len(dated) > 0
    assert max(copies) == case.window.start - NEW_NETWORK.lookback_span - timedelta(microseconds=1)
