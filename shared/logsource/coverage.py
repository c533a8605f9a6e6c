"""Coverage: which log tables had rows in the audited range, and which rules could therefore be evaluated.

A rule whose tables have no rows in its window returns no rows, which reads as "0 findings": a silent all-clear.
So every audit measures, through the LogSource port (Log Analytics in Azure, the embedded engine locally), per
table the rows and the time range it holds, and per window which tables had rows. One query over the whole range
does both, cut into cells no longer than the shortest window:

    union isfuzzy=true (T1 | where TimeGenerated in the range | project TimeGenerated, Type), (T2 | ...), ...
    | summarize Rows = count(), First = min(TimeGenerated), Last = max(TimeGenerated)
        by Table = Type, Cell = bin(TimeGenerated, <cell>)

A table had rows in a window [s, e) when one of its cells has First < e and Last >= s. That is exact because a
window is at least a cell long, so it cannot lie strictly inside one: a cell it overlaps is either inside it or
cut by one of its ends, and then First or Last tells which side the rows are on. A range too long for that many
cells gets longer cells (at most MAX_CELLS), and a window shorter than a cell is counted by a query of its own.

A detection is evaluated in a window when every table it reads had rows there. A posture check that reads the
sign-in logs needs rows in at least one sign-in table on its audit day (its own code already refuses to call a
credential unused when the logs do not reach back far enough). A rule evaluated in none of its windows is
"not evaluated" (the exit code and the digest say so); one evaluated in only some is reported, not alarmed: a
quiet table such as AuditLogs can have an hour or a day without rows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.catalog.model import Detection
from shared.catalog.render import kql_datetime
from shared.coverage import Coverage, Gap, TableCoverage
from shared.logsource.base import LogSource, Row
from shared.posture.catalog import SIGN_IN_TABLES, PostureCheck
from shared.timespan import format_timespan

Window = tuple[datetime, datetime]

COVERAGE_QUERY = """\
union isfuzzy=true {legs}
| summarize Rows = count(), First = min(TimeGenerated), Last = max(TimeGenerated) by Table = Type{cells}
"""
MAX_CELLS = 2000  # per table, in the one query that measures a run


@dataclass(frozen=True)
class Requirement:
    """What a rule needs to be evaluated: rows in its tables (all of them, or any one) in each of its windows."""

    rule_id: str
    name: str
    tables: tuple[str, ...]
    windows: Sequence[Window]
    any_table: bool = False


def detection_requirement(detection: Detection, windows: Sequence[Window]) -> Requirement:
    return Requirement(detection.id, detection.name, tuple(detection.tables), windows)


def posture_requirement(check: PostureCheck, days: Sequence[Window]) -> Requirement:
    """A check that reads the sign-in logs needs rows in one of them on its audit days; others need no logs."""
    return Requirement(check.id, check.name, SIGN_IN_TABLES if check.usageLookback else (), days, any_table=True)


def coverage_query(tables: Iterable[str], start: datetime, end: datetime, cell: timedelta | None = None) -> str:
    """Rows, first and last time per table in [start, end); per table and cell of that length when given."""
    header = f"let WindowStart = {kql_datetime(start)}; let WindowEnd = {kql_datetime(end)};"
    legs = ",\n    ".join(f"({table} | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd "
                            "| project TimeGenerated, Type)" for table in sorted(set(tables)))
    cells = f", Cell = bin(TimeGenerated, {format_timespan(cell)})" if cell else ""
    return header + "\n" + COVERAGE_QUERY.format(legs=legs, cells=cells)


def measure_coverage(source: LogSource, requirements: Sequence[Requirement],
                     each_query: Callable[[], None] = lambda: None) -> Coverage | None:
    """The coverage of these rules' windows; None when no rule has a window. LogQueryError when the source fails.
    `each_query` runs before every query (the audit renews its lease there)."""
    requirements = [requirement for requirement in requirements if requirement.windows]
    if not requirements:
        return None
    tables = sorted({table for requirement in requirements for table in requirement.tables})
    windows = sorted({window for requirement in requirements for window in requirement.windows})
    start, end = windows[0][0], max(window_end for _, window_end in windows)
    cell = _cell_length(windows, end - start)
    each_query()
    cells = source.query(coverage_query(tables, start, end, cell), start, end)
    cells = [row for row in cells if row.get("Table") in tables]
    coverage = Coverage(start=start, end=end, rules=len(requirements),
                        tables={table: _total([row for row in cells if row["Table"] == table]) for table in tables})
    present = {window: _tables_in(window, cells) if window[1] - window[0] >= cell else
               {table for table, counted in _count(source, tables, *window, each_query).items() if counted.rows}
               for window in windows}
    for requirement in requirements:
        gap = _gap(requirement, present)
        if gap is not None:
            coverage.gaps[requirement.rule_id] = gap
    return coverage


def _cell_length(windows: Sequence[Window], span: timedelta) -> timedelta:
    """The shortest window in whole seconds, or longer when the range would need more than MAX_CELLS cells."""
    shortest = min(window_end - window_start for window_start, window_end in windows)
    return timedelta(seconds=max(1, int(max(shortest, span / MAX_CELLS).total_seconds())))


def _total(cells: Sequence[Row]) -> TableCoverage:
    if not cells:
        return TableCoverage()
    return TableCoverage(rows=sum(row["Rows"] for row in cells), first=min(row["First"] for row in cells),
                         last=max(row["Last"] for row in cells))


def _tables_in(window: Window, cells: Sequence[Row]) -> set[str]:
    window_start, window_end = window
    return {row["Table"] for row in cells if row["First"] < window_end and row["Last"] >= window_start}


def _count(source: LogSource, tables: list[str], start: datetime, end: datetime,
           each_query: Callable[[], None]) -> dict[str, TableCoverage]:
    each_query()
    rows = source.query(coverage_query(tables, start, end), start, end)
    return {row["Table"]: TableCoverage(rows=row["Rows"], first=row["First"], last=row["Last"])
            for row in rows if row.get("Table") in tables}


def _gap(requirement: Requirement, present: dict[Window, set[str]]) -> Gap | None:
    if not requirement.tables:
        return None
    missing: set[str] = set()
    lacking = 0
    for window in requirement.windows:
        absent = [table for table in requirement.tables if table not in present[window]]
        if (len(absent) == len(requirement.tables)) if requirement.any_table else absent:
            lacking += 1
            missing.update(absent)
    if not lacking:
        return None
    return Gap(name=requirement.name, missing=sorted(missing), windows=lacking, of=len(requirement.windows))
