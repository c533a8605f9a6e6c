"""Run a detection over a window of a LogSource and turn its rows into Findings."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from shared.catalog.model import Detection
from shared.catalog.render import render
from shared.findings import Finding
from shared.logsource.base import LogQueryError, LogSource, Row
from shared.text import fill
from shared.windows import slices

Window = tuple[datetime, datetime]


def run_detection(detection: Detection, source: LogSource, start: datetime, end: datetime,
                  overrides: Mapping[str, Any] | None = None) -> list[Finding]:
    """Findings of one window. The source reads from `start - lookback` so baselines are in range."""
    rows = source.query(render(detection, start, end, overrides), start - detection.lookback_span, end)
    return [to_finding(detection, row, start, end) for row in rows]


def to_finding(detection: Detection, row: Row, start: datetime, end: datetime) -> Finding:
    entities = {key: _text(row.get(column)) for key, column in detection.entity_columns().items()}
    name_column = detection.principal_name_column
    return Finding(
        detection_id=detection.id,
        detection_name=detection.name,
        severity=_severity(detection, row),
        principal_id=_text(row.get(detection.principal_column)),
        principal_name=_text(row.get(name_column)) if name_column else "",
        entities=entities,
        window_start=start,
        window_end=end,
        first_seen=_moment(row, "FirstSeen", "TimeGenerated"),
        last_seen=_moment(row, "LastSeen", "TimeGenerated"),
        summary=_summary(detection, row),
        evidence=row,
    )


def _severity(detection: Detection, row: Row) -> str:
    """A query may raise or lower severity per row with a `Severity` output column."""
    value = row.get("Severity")
    return value if value in ("Informational", "Low", "Medium", "High") else detection.severity


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _moment(row: Row, *columns: str) -> datetime | None:
    for column in columns:
        if isinstance(row.get(column), datetime):
            return row[column]
    return None


def _summary(detection: Detection, row: Row) -> str:
    override = detection.alertDetailsOverride
    template = override.alertDescriptionFormat if override else None
    if not template:
        return detection.name
    return fill(template, row)


@dataclass
class CatalogRun:
    """Findings of every detection over a range, and the detections that failed (the others still ran)."""

    findings: list[Finding] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    windows: int = 0


def run_catalog(detections: Iterable[Detection], source: LogSource, since: datetime, until: datetime,
                progress: Callable[[Detection], None] | None = None) -> CatalogRun:
    """Every detection over [since, until), window by window of its query frequency."""
    run = CatalogRun()
    for detection in detections:
        if progress:
            progress(detection)
        windows = slices(since, until, detection.frequency)
        try:
            for start, end in windows_to_query(detection, source, windows):
                run.findings.extend(run_detection(detection, source, start, end))
            run.windows += len(windows)
        except LogQueryError as error:
            run.errors[detection.id] = str(error)
    return run


@runtime_checkable
class KnowsQuietWindows(Protocol):
    def windows_with_rows(self, kql: str, ranges: Sequence[Window]) -> list[bool]: ...

    def silent_on_empty_tables(self, kql: str) -> bool: ...


def windows_to_query(detection: Detection, source: LogSource, windows: Sequence[Window],
                     overrides: Mapping[str, Any] | None = None) -> list[Window]:
    """The windows whose answer can differ from "no rows", so a long range over a short log costs what its data
    does. A window is quiet when no table the query reads has a row from its lookback start to its end (what
    Log Analytics would let the query see); the query then answers what it answers over empty tables, and a
    query silent there is skipped. A query that gives rows from nothing (e.g. a `summarize count()` without `by`)
    runs in every window, and so does every query of a source that cannot tell (Log Analytics) or that fails to
    (the windows' own queries then report the error). Every window left out was proven quiet."""
    if not windows or not isinstance(source, KnowsQuietWindows):
        return list(windows)
    kql = render(detection, *windows[0], overrides)
    try:
        busy = source.windows_with_rows(kql, [(start - detection.lookback_span, end) for start, end in windows])
        if all(busy) or not source.silent_on_empty_tables(kql):
            return list(windows)
    except LogQueryError:
        return list(windows)
    return [window for window, rows in zip(windows, busy, strict=True) if rows]
