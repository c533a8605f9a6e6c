"""Print an audit's coverage: rows per table in the audited range and the rules that could not be evaluated."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from shared.coverage import Coverage, coverage_line
from shared.text import join_list, moment


def print_coverage(coverage: Coverage, out: Console, kind: str = "detections") -> None:
    table = Table(title=f"Log rows from {moment(coverage.start)} to {moment(coverage.end)}")
    for column in ("Table", "Rows", "First", "Last"):
        table.add_column(column, justify="right" if column == "Rows" else "left")
    for name, counted in sorted(coverage.tables.items()):
        rows = f"{counted.rows:,}" if counted.rows else "[yellow]none[/]"
        table.add_row(name, rows, moment(counted.first, "-"), moment(counted.last, "-"))
    out.print(table)
    if not coverage.has_data:
        return
    for gap in coverage.not_evaluated.values():
        out.print(f"[yellow]not evaluated:[/] {gap.name} (no rows in {join_list(gap.missing)})")
    for gap in coverage.partly_evaluated.values():
        out.print(f"[yellow]evaluated in {gap.of - gap.windows} of {gap.of} windows:[/] {gap.name} "
                  f"(no rows in {join_list(gap.missing)} in the others)")
    out.print(coverage_line(coverage, kind))
