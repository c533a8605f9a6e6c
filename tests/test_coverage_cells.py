"""Coverage is measured by one query per run: rows, first and last time per table and cell. Which tables had rows
in each window must be what a query of that window alone says, however the windows fall on the cells."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.catalog.loader import load_catalog
from shared.logsource import coverage
from shared.logsource.coverage import Requirement, coverage_query, measure_coverage
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.windows import slices

TABLES = sorted({table for detection in load_catalog() for table in detection.tables})
FIRST_ROWS = SAMPLE_NOW - timedelta(days=10)  # the sample tenant's logs begin here


class Counting:
    def __init__(self, inner) -> None:
        self.inner, self.queries = inner, 0

    def query(self, kql, start, end):
        self.queries += 1
        return self.inner.query(kql, start, end)


def _alone(source, window) -> set[str]:
    return {row["Table"] for row in source.query(coverage_query(TABLES, *window), *window) if row["Rows"]}


def _windows() -> list:
    """Windows that start before the logs and run into them, cut at odd times, of several lengths and overlapping."""
    since, until = FIRST_ROWS - timedelta(hours=7, minutes=13), FIRST_ROWS + timedelta(days=2, hours=3, minutes=17)
    return sorted({*slices(since, until, timedelta(days=1)), *slices(since, until, timedelta(hours=5)),
                   (FIRST_ROWS + timedelta(hours=5), FIRST_ROWS + timedelta(hours=5, minutes=3))})


@pytest.mark.parametrize("max_cells", [coverage.MAX_CELLS, 7], ids=["cells of the shortest window", "longer cells"])
def test_each_window_has_the_tables_a_query_of_it_alone_finds(sample_source, monkeypatch, max_cells):
    monkeypatch.setattr(coverage, "MAX_CELLS", max_cells)
    windows = _windows()
    requirements = [Requirement(f"{table} {i}", table, (table,), [window])
                    for i, window in enumerate(windows) for table in TABLES]
    source = Counting(sample_source)
    measured = measure_coverage(source, requirements)

    alone = {window: _alone(sample_source, window) for window in windows}
    assert {(requirement.tables[0], requirement.windows[0]) for requirement in requirements
            if requirement.rule_id not in measured.gaps} == {(table, window) for window in windows
                                                             for table in alone[window]}
    assert 0 < len(measured.gaps) < len(requirements)  # some windows had rows of a table, some not
    start, end = windows[0][0], max(e for _, e in windows)
    whole = {row["Table"]: (row["Rows"], row["First"], row["Last"])
             for row in sample_source.query(coverage_query(TABLES, start, end), start, end)}
    assert {table: (counted.rows, counted.first, counted.last) for table, counted in measured.tables.items()
            if counted.rows} == whole

    shorter = sum(e - s < (end - start) / max_cells for s, e in windows)  # than a cell: each counted on its own
    assert source.queries == 1 + shorter
    assert shorter == 0 if max_cells > 1000 else shorter > 2
