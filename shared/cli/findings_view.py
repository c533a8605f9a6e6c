"""Print findings with Rich: one table per severity, a recurring finding on one line."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rich.table import Table

from shared.cli.common import SEVERITY_STYLE, console
from shared.findings import Finding
from shared.severity import SEVERITIES


@dataclass
class FindingGroup:
    """The windows in which one finding (detection + entity) fired."""

    latest: Finding
    windows: int


def group_findings(findings: Iterable[Finding]) -> list[FindingGroup]:
    groups: dict[str, FindingGroup] = {}
    for finding in sorted(findings, key=lambda f: f.window_start):
        group = groups.get(finding.id)
        if group is None:
            groups[finding.id] = FindingGroup(finding, 1)
        else:
            group.latest, group.windows = finding, group.windows + 1
    return list(groups.values())


def print_findings(findings: Iterable[Finding], label: Callable[[Finding], str] | None = None) -> None:
    """Highest severity first; `label` adds a column (the demo names the scenario a finding matched)."""
    groups = group_findings(findings)
    for severity in reversed(SEVERITIES):
        chosen = [g for g in groups if g.latest.severity == severity]
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
        for group in sorted(chosen, key=lambda g: (g.latest.detection_name, g.latest.principal_name)):
            finding = group.latest
            cells = [finding.detection_name, finding.principal_name or finding.principal_id,
                     f"{finding.window_start:%Y-%m-%d %H:%M}", str(group.windows), finding.summary]
            table.add_row(*cells, *([label(finding)] if label else []))
        console.print(table)
