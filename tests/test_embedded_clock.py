"""ago() and now() in a query read the embedded source's fixed clock, as Kusto reads the request time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


def _source(now: datetime) -> EmbeddedLogSource:
    database = LogDatabase()
    database.insert("AuditLogs", [(None, {"TimeGenerated": NOW - timedelta(hours=hours), "Id": f"{hours}h ago"})
                                  for hours in (1, 5, 30)])
    return EmbeddedLogSource(database, now)


def test_ago_counts_back_from_the_sources_now():
    rows = _source(NOW).query("AuditLogs | where TimeGenerated > ago(6h) | project Id | order by Id asc",
                              NOW - timedelta(days=2), NOW)
    assert rows == [{"Id": "1h ago"}, {"Id": "5h ago"}]


def test_another_now_gives_another_answer():
    rows = _source(NOW + timedelta(days=1)).query("AuditLogs | where TimeGenerated > ago(1d) | project Id",
                                                  NOW - timedelta(days=2), NOW)
    assert rows == []


def test_now_is_the_fixed_clock_beside_a_window_header():
    kql = ("let WindowStart = datetime(2026-03-11T00:00:00Z); let WindowEnd = datetime(2026-03-11T12:00:00Z);\n"
           "AuditLogs | where TimeGenerated between (WindowStart .. WindowEnd) | summarize n = count() "
           "| extend Now = now()")
    rows = _source(NOW).query(kql, NOW - timedelta(days=2), NOW)
    assert rows == [{"n": 2, "Now": NOW}]
