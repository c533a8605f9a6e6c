"""A long range over a short log costs what its data does: windows whose tables hold no row from their lookback
start to their end are not queried when the query is silent over empty tables. The answers must be the same as
querying every window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.catalog.loader import load_catalog
from shared.detect import run_catalog, run_detection, windows_to_query
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.windows import slices

DAY = timedelta(days=1)
NOW = datetime(2026, 3, 10, tzinfo=UTC)
AUDIT = "let WindowStart = datetime(2026-03-09T00:00:00Z); let WindowEnd = datetime(2026-03-10T00:00:00Z);\n"


def _source() -> EmbeddedLogSource:
    database = LogDatabase()
    assert database.insert("AuditLogs", [(None, {"TimeGenerated": "2026-03-05T10:00:00Z", "OperationName": "a"}),
                                         (None, {"TimeGenerated": "2026-03-07T00:00:00Z", "OperationName": "b"})]) == []
    assert database.insert("AzureActivity", [(None, {"TimeGenerated": "2026-03-08T12:00:00Z"})]) == []
    return EmbeddedLogSource(database, NOW)


def _day(day: int) -> tuple[datetime, datetime]:
    start = datetime(2026, 3, day, tzinfo=UTC)
    return start, start + DAY


def test_a_window_has_rows_from_its_start_up_to_but_not_including_its_end():
    source = _source()
    kql = AUDIT + "AuditLogs | where TimeGenerated between (WindowStart .. WindowEnd)"
    assert source.windows_with_rows(kql, [_day(4), _day(5), _day(6), _day(7)]) == [False, True, False, True]


def test_every_table_the_query_reads_counts():
    source = _source()
    only_audit = AUDIT + "AuditLogs | project TimeGenerated"
    both = AUDIT + "union AuditLogs, AzureActivity | project TimeGenerated"
    assert source.windows_with_rows(only_audit, [_day(8)]) == [False]
    assert source.windows_with_rows(both, [_day(8)]) == [True]


def test_a_query_that_makes_rows_from_nothing_runs_in_every_window():
    source = _source()
    assert source.silent_on_empty_tables(AUDIT + "AuditLogs | where OperationName == 'a'")
    assert not source.silent_on_empty_tables(AUDIT + "AuditLogs | summarize Rows = count()")


def test_quiet_windows_are_skipped_and_the_busy_ones_kept(sample_source):
    detection = load_catalog().get("sp_signin_failures")
    first_rows = SAMPLE_NOW - 10 * DAY
    windows = slices(first_rows - 5 * DAY, first_rows + 2 * DAY, detection.frequency)
    kept = windows_to_query(detection, sample_source, windows)
    assert kept and len(kept) < len(windows)
    assert all(end > first_rows - detection.lookback_span for _, end in kept)


@pytest.mark.parametrize("detection", list(load_catalog()), ids=lambda detection: detection.id)
def test_skipping_quiet_windows_gives_the_findings_of_every_window(sample_source, detection):
    """Around the first day of the sample tenant's logs: quiet windows before it, busy ones from it on."""
    first_rows = SAMPLE_NOW - 10 * DAY
    since, until = first_rows - 2 * DAY, first_rows + 2 * DAY
    every = [finding for start, end in slices(since, until, detection.frequency)
             for finding in run_detection(detection, sample_source, start, end)]
    skipping = run_catalog([detection], sample_source, since, until)
    assert not skipping.errors
    assert sorted(f.model_dump_json() for f in skipping.findings) == sorted(f.model_dump_json() for f in every)
