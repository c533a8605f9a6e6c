"""`wiaudit detections list|test|validate`."""

from __future__ import annotations

import typer
from rich.table import Table

from shared.catalog.loader import Catalog, load_catalog
from shared.catalog.testing import run_tests
from shared.catalog.validation import validate_catalog
from shared.cli.common import SEVERITY_STYLE, console, friendly_errors

app = typer.Typer(no_args_is_help=True, help="The detection catalog: list, test and validate its rules.")


def _catalog() -> Catalog:
    with friendly_errors():
        return load_catalog()


@app.command("list")
def list_detections(markdown: bool = typer.Option(False, "--markdown", help="A Markdown table for the README")) -> None:
    """Every detection with its severity, tables and tactics."""
    catalog = _catalog()
    rows = [(d.name, d.severity, ", ".join(d.tables), ", ".join(d.tactics), catalog.paths[d.id].stem)
            for d in sorted(catalog, key=lambda d: (-_rank(d.severity), d.name))]
    if markdown:
        console.print(markdown_table(rows), soft_wrap=True)
        return
    table = Table(title=f"{len(rows)} detections")
    for column in ("Name", "Severity", "Tables", "Tactics", "File"):
        table.add_column(column)
    for name, severity, tables, tactics, stem in rows:
        table.add_row(name, f"[{SEVERITY_STYLE[severity]}]{severity}[/]", tables, tactics, stem)
    console.print(table)


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| Detection | Severity | Tables | Tactics |", "|---|---|---|---|"]
    lines += [f"| {name} | {severity} | {tables} | {tactics} |" for name, severity, tables, tactics, _ in rows]
    return "\n".join(lines)


def _rank(severity: str) -> int:
    return ("Informational", "Low", "Medium", "High").index(severity)


@app.command("test")
def test_detections(detection: str = typer.Argument(None, help="Id, id prefix or file name; all when omitted")) -> None:
    """Run the detections' own tests on the embedded KQL engine."""
    catalog = _catalog()
    with friendly_errors():
        chosen = [catalog.get(detection)] if detection else list(catalog)
    failed = 0
    for item in chosen:
        for outcome in run_tests(item):
            mark = "[green]pass[/]" if outcome.passed else "[red]FAIL[/]"
            console.print(f"{mark} {item.name} :: {outcome.test.name}")
            for problem in outcome.problems:
                console.print(f"      {problem}")
            failed += not outcome.passed
    console.print(f"{failed} failed" if failed else "all detection tests passed")
    raise typer.Exit(1 if failed else 0)


@app.command("validate")
def validate_detections() -> None:
    """Check every query with Microsoft's Kusto parser against the table schemas."""
    catalog = _catalog()
    with friendly_errors():
        problems = validate_catalog(catalog)
    bad = 0
    for item in catalog:
        found = problems[item.id]
        console.print(f"{'[green]valid[/]' if not found else '[red]INVALID[/]'} {item.name}")
        for problem in found:
            console.print(f"      {problem}")
        bad += bool(found)
    raise typer.Exit(1 if bad else 0)
