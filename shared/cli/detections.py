"""`wiaudit detections list|test|validate|export-sentinel`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from shared.catalog.loader import Catalog, load_catalog
from shared.catalog.sentinel import SentinelExportError, export_sentinel, oversized
from shared.catalog.testing import run_tests
from shared.catalog.validation import validate_catalog
from shared.cli.common import SEVERITY_STYLE, console, friendly_errors
from shared.posture.catalog import PostureCatalog, load_checks
from shared.posture.testing import run_check_tests

app = typer.Typer(no_args_is_help=True, help="The detection catalog: list, test, validate and export its rules.")


def _catalog() -> Catalog:
    with friendly_errors():
        return load_catalog()


def _checks() -> PostureCatalog:
    with friendly_errors():
        return load_checks()


@app.command("list")
def list_detections(markdown: bool = typer.Option(False, "--markdown", help="A Markdown table for the README")) -> None:
    """Every detection (KQL, kind Scheduled) and posture check (kind Posture) with its severity, tables and tactics."""
    catalog, checks = _catalog(), _checks()
    items = [(d, catalog.paths[d.id].stem) for d in catalog] + [(c, checks.paths[c.id].stem) for c in checks]
    rows = [(item.name, item.kind, item.severity, ", ".join(item.tables), ", ".join(item.tactics), stem)
            for item, stem in sorted(items, key=lambda pair: (pair[0].kind != "Scheduled", -_rank(pair[0].severity),
                                                              pair[0].name))]
    if markdown:
        console.print(markdown_table(rows), soft_wrap=True)
        return
    table = Table(title=f"{len(catalog)} detections, {len(checks)} posture checks")
    for column in ("Name", "Kind", "Severity", "Tables", "Tactics", "File"):
        table.add_column(column)
    for name, kind, severity, tables, tactics, stem in rows:
        table.add_row(name, kind, f"[{SEVERITY_STYLE[severity]}]{severity}[/]", tables, tactics, stem)
    console.print(table)


def markdown_table(rows: list[tuple[str, ...]]) -> str:
    lines = ["| Detection | Kind | Severity | Tables | Tactics |", "|---|---|---|---|---|"]
    lines += [f"| {name} | {kind} | {severity} | {tables} | {tactics} |"
              for name, kind, severity, tables, tactics, _ in rows]
    return "\n".join(lines)


def _rank(severity: str) -> int:
    return ("Informational", "Low", "Medium", "High").index(severity)


@app.command("test")
def test_detections(detection: str = typer.Argument(None, help="Id, id prefix or file name; all when omitted")) -> None:
    """Run the detections' own tests on the embedded KQL engine, and the posture checks' own tests."""
    catalog, checks = _catalog(), _checks()
    with friendly_errors():
        chosen = [_choose(detection, catalog, checks)] if detection else [*catalog, *checks]
    failed = 0
    for item in chosen:
        for outcome in (run_tests(item) if item.kind == "Scheduled" else run_check_tests(item)):
            mark = "[green]pass[/]" if outcome.passed else "[red]FAIL[/]"
            console.print(f"{mark} {item.name} :: {outcome.test.name}")
            for problem in outcome.problems:
                console.print(f"      {problem}")
            failed += not outcome.passed
    console.print(f"{failed} failed" if failed else "all detection tests passed")
    raise typer.Exit(1 if failed else 0)


def _choose(key: str, catalog: Catalog, checks: PostureCatalog):
    """A detection, else a posture check, by id, id prefix or file name (KeyError: neither)."""
    try:
        return catalog.get(key)
    except KeyError:
        if key in checks.stems or any(check.id.startswith(key) for check in checks):
            return checks.get(key)
        raise


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


@app.command("export-sentinel")
def export_to_sentinel(
    out: Path = typer.Option(..., "--out", help="Folder to write yaml/, arm/ and watchlists/ to"),
    force: bool = typer.Option(False, "--force", help="Write into a non-empty folder, replacing an earlier export"),
) -> None:
    """Write every rule as a Microsoft Sentinel scheduled analytic rule (YAML and ARM templates), and the tier-model
    watchlists the rules read."""
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} is not a folder", param_hint="--out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise typer.BadParameter(f"{out} is not empty; choose a new folder or pass --force", param_hint="--out")
    catalog = _catalog()
    if force:
        _remove_earlier_export(out)
    try:
        written = export_sentinel(catalog, out)
    except SentinelExportError as error:
        for problem in error.problems:
            console.print(f"[red]not exportable[/] {problem}")
        raise typer.Exit(1) from None
    for path in written:
        console.print(f"wrote {path}")
    left_out = oversized(catalog)
    console.print(f"{len(catalog) - len(left_out)} rules exported to {out}")
    for problem in left_out:
        console.print(f"[red]not exported[/] {problem}")
    if left_out:
        raise typer.Exit(1)


def _remove_earlier_export(out: Path) -> None:
    """So a rule removed from the catalog does not linger in the folder and get deployed again."""
    for pattern in ("yaml/*.yaml", "arm/*.json", "watchlists/*.csv"):
        for path in out.glob(pattern):
            path.unlink()
