"""A set a rule makes comes out in one order whatever order the rows came in.

`make_set` returns its values in whatever order the engine met them (DuckDB aggregates in parallel, Kusto on many
nodes), so the same logs could give a finding whose evidence and summary lists change order from run to run. Rules
sort a set where they make it (`array_sort_asc(make_set(...))`); lists whose order means something (`make_list`
in time order) are left as they are."""

from __future__ import annotations

import re
from typing import Any

from shared.catalog.loader import load_catalog
from shared.catalog.model import Detection, DetectionTest
from shared.catalog.render import render
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

CATALOG = load_catalog()
MAKE_SET = re.compile(r"\bmake_set(?:_if)?\s*\(")
SORTED_MAKE_SET = re.compile(r"\barray_sort_asc\s*\(\s*make_set(?:_if)?\s*\(")


def _run(detection: Detection, test: DetectionTest, reverse: bool) -> list[dict[str, Any]]:
    database = LogDatabase()
    for table, rows in test.rows.items():
        assert not database.insert(table, ((None, row) for row in (rows[::-1] if reverse else rows)))
    source = EmbeddedLogSource(database, now=test.window.end)
    return source.query(render(detection, test.window.start, test.window.end, test.parameters),
                        test.window.start, test.window.end)


def _ordered(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(repr(sorted(row.items())) for row in rows)


def test_every_set_a_rule_makes_is_sorted_where_it_is_made():
    unsorted = [(detection, len(MAKE_SET.findall(detection.query)) - len(SORTED_MAKE_SET.findall(detection.query)))
                for detection in CATALOG]
    offenders = [f"{detection.id} - {detection.name}: make_set outside array_sort_asc(...), {count} of them"
                 for detection, count in unsorted if count]
    assert not offenders, "\n".join(offenders)


def test_the_same_rows_in_another_order_give_the_same_findings_lists_and_all():
    cases = [(detection, test) for detection in CATALOG if MAKE_SET.search(detection.query)
             for test in detection.tests if test.expect]
    assert len({detection.id for detection, _ in cases}) > 20
    differ = [f"{detection.name} / {test.name}" for detection, test in cases
              if _ordered(_run(detection, test, reverse=False)) != _ordered(_run(detection, test, reverse=True))]
    assert not differ, "\n".join(differ)
