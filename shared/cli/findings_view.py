"""Print findings with Rich: one table per severity, a recurring finding on one line."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rich.table import Table

from shared.cli.common import SEVERITY_STYLE, console
from shared.findings import Finding
from shared.severity import SEVERITIES
from shared.store.model import StoredFinding


@dataclass
class FindingRow:
    """One finding (detection + entity) and the number of windows it fired in."""

    finding: Finding | StoredFinding
    windows: int


def rows_of_findings(findings: Iterable[Finding]) -> list[FindingRow]:
    """Collapse the windows of a recurring finding into one row showing the latest."""
    rows: dict[str, FindingRow] = {}
    for finding in sorted(findings, key=lambda f: f.window_start):
        row = rows.get(finding.id)
        if row is None:
            rows[finding.id] = FindingRow(finding, 1)
        else:
            row.finding, row.windows = finding, row.windows + 1
    return list(rows.values())


def rows_of_stored(findings: Iterable[StoredFinding]) -> list[FindingRow]:
    return [FindingRow(finding, finding.occurrences) for finding in findings]


def print_findings(rows: Sequence[FindingRow], label: Callable[[Finding | StoredFinding], str] | None = None) -> None:
    """Highest severity first; `label` adds a column (the demo names the scenario a finding matched)."""
    for severity in reversed(SEVERITIES):
        chosen = [row for row in rows if row.finding.severity == severity]
        if not chosen:
            continue
        style = SEVERITY_STYLE[severity]
        table = Table(title=f"[{style}]{severity}[/] ({len(chosen)})", title_justify="left", expand=True)
        table.add_column("Detection", ratio=2)
        table.add_column("Principal", ratio=1)
        table.add_column("Last window (UTC)", no_wrap=True)
        table.add_column("Windows", justify="right")
        table.add_column("Why it matters", ratio=4)
        if label:
            table.add_column("Scenario", ratio=1)
        for row in sorted(chosen, key=lambda r: (r.finding.detection_name, r.finding.principal_name)):
            finding = row.finding
            cells = [finding.detection_name, finding.principal_name or finding.principal_id,
                     f"{finding.window_start:%Y-%m-%d %H:%M}", str(row.windows), finding.summary]
            table.add_row(*cells, *([label(finding)] if label else []))
        console.print(table)


def print_suppressed(rows: Sequence[FindingRow]) -> None:
    """Findings a suppression matched, apart from the others: what matched them and until when."""
    if not rows:
        return
    table = Table(title=f"[dim]Suppressed[/] ({len(rows)})", title_justify="left", expand=True)
    for column in ("Detection", "Principal", "Windows", "Suppression", "Until", "Reason"):
        table.add_column(column)
    for row in sorted(rows, key=lambda r: (r.finding.detection_name, r.finding.principal_name)):
        finding, suppression = row.finding, row.finding.suppression
        if suppression is None:
            continue
        table.add_row(finding.detection_name, finding.principal_name or finding.principal_id, str(row.windows),
                      suppression.id, f"{suppression.until}", suppression.reason)
    console.print(table)
