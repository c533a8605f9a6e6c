"""`wiaudit detect` and `wiaudit trail`: audit any folder of exported or archived logs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from shared.catalog.loader import Catalog, load_catalog
from shared.cli import exit_codes
from shared.cli.common import console, errors, existing_folder, friendly_errors, parse_moment, utc_now
from shared.cli.coverage_view import print_coverage
from shared.cli.findings_view import print_findings, print_suppressed, rows_of_findings
from shared.cli.kusto_options import KUSTO_CLUSTER, KUSTO_DATABASE, chosen_kusto_source
from shared.coverage import Coverage
from shared.detect import CatalogRun, run_catalog
from shared.directory.port import SnapshotFileDirectory
from shared.identities import directory_identities, log_identities, resolve_identity
from shared.local.home import local_home
from shared.logsource.base import LogSource
from shared.logsource.coverage import detection_requirement, measure_coverage
from shared.logsource.database import LoadProblem, LoadReport, log_files_of
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.loaded_copy import load_once
from shared.settings import BY_NAME, read_setting
from shared.suppressions.load import configured_suppressions
from shared.text import moment, plural
from shared.trail import trail
from shared.trail_logicapp import logic_app_links, summary, trail_events
from shared.windows import slices

LOGS = typer.Option(..., "--logs", help="Folder of log files: Log Analytics exports, Parquet or raw diagnostic JSON")
OPTIONAL_LOGS = typer.Option(None, "--logs", help="Folder of log files: Log Analytics exports, Parquet or raw "
                             "diagnostic JSON (or --kusto-cluster)")
NOW = typer.Option(None, "--now", help="The audit's 'now' (UTC); default: the current time")
SINCE = typer.Option(None, "--since", help="Start of the audited range (UTC); default: a day before --now")
SUPPRESSIONS = typer.Option(None, "--suppressions", help="Folder of suppression files; default: SUPPRESSIONS_PATH "
                            "or the project's suppressions/")
MAX_PROBLEMS_SHOWN = 20
NAMES_LOOKBACK = timedelta(days=30)  # without a directory, identities are named by what signed in this far back


def register(app: typer.Typer) -> None:
    app.command("detect", epilog=exit_codes.HELP)(detect)
    app.command("trail")(show_trail)


def load_logs(folder: Path, now: datetime) -> EmbeddedLogSource:
    return load_logs_reported(folder, now)[0]


def load_logs_reported(folder: Path, now: datetime) -> tuple[EmbeddedLogSource, LoadReport]:
    """The folder's logs, loaded once and reused while no file changes (the loaded copy under the local home), with
    a progress bar of files and bytes; bad records are reported by file and line and unreadable files by name."""
    files = log_files_of(folder)
    done = iter(range(1, len(files) + 1))
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                  console=errors, transient=True) as progress:
        task = progress.add_task("loading logs", total=sum(path.stat().st_size for path, _ in files))
        loaded = load_once(folder, local_home() / "logs", progress=lambda path, size: progress.update(
            task, description=f"file {next(done)} of {len(files)}: {path.name}", advance=size))
    if loaded.reused:
        errors.print(f"using the loaded copy of {plural(loaded.report.files, 'file')} from {folder} (loaded "
                     f"{moment(loaded.loaded_at)}; a changed, added or removed file loads the folder again)")
    describe_load(loaded.report)
    return EmbeddedLogSource(loaded.database, now), loaded.report


def describe_load(report: LoadReport) -> None:
    loaded = ", ".join(f"{table} {count:,}" for table, count in sorted(report.rows.items())) or "no rows"
    errors.print(f"loaded {plural(report.files, 'file')}: {loaded}")
    if report.unreadable:
        errors.print(f"[yellow]{plural(len(report.unreadable), 'file')} could not be read and "
                     f"{'was' if len(report.unreadable) == 1 else 'were'} skipped (see below)[/]")
    if report.problems:
        errors.print(f"[yellow]{plural(len(report.problems), 'problem')} in the logs; these records or files were "
                     "not loaded:[/]")
        for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
            errors.print(f"  {problem}")
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            errors.print(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more")
    if report.unmatched:
        errors.print(f"[yellow]{plural(len(report.unmatched), 'file')} matched no known log table[/] (name a file "
                     "or folder after its table, e.g. AuditLogs.json, or keep raw diagnostic records as Entra "
                     "writes them):")
        for path in report.unmatched[:MAX_PROBLEMS_SHOWN]:
            errors.print(f"  {path}")
        if len(report.unmatched) > MAX_PROBLEMS_SHOWN:
            errors.print(f"  ... and {len(report.unmatched) - MAX_PROBLEMS_SHOWN} more")


def folder_coverage(catalog: Catalog, source: LogSource, since: datetime, now: datetime) -> Coverage:
    requirements = [detection_requirement(detection, slices(since, now, detection.frequency))
                    for detection in catalog]
    coverage = measure_coverage(source, requirements)
    assert coverage is not None  # since < now: every detection has a window
    return coverage


def audit_catalog(catalog: Catalog, source: LogSource, since: datetime, now: datetime) -> CatalogRun:
    with Progress(console=errors, transient=True) as progress:
        task = progress.add_task("detections", total=len(catalog))
        run = run_catalog(catalog, source, since, now,
                          progress=lambda d: progress.update(task, description=d.name, advance=1))
    for detection_id, message in run.errors.items():
        errors.print(f"[red]detection {catalog.detections[detection_id].name} failed:[/] {message}")
    return run


def detect(logs: Path | None = OPTIONAL_LOGS, now: str | None = NOW, since: str | None = SINCE,
           suppressions: Path | None = SUPPRESSIONS,
           as_json: bool = typer.Option(False, "--json", help="Print the findings as JSON"),
           kusto_cluster: str | None = KUSTO_CLUSTER, kusto_database: str | None = KUSTO_DATABASE) -> None:
    """Run the whole detection catalog over a folder of logs (or a Kusto database) and print the findings and the
    coverage (rows per table in the range; detections whose tables had no rows are "not evaluated", never
    "0 findings")."""
    until = parse_moment(now, "--now") or utc_now()
    cluster_source = chosen_kusto_source(logs, kusto_cluster, kusto_database, now=until)
    start = parse_moment(since, "--since") or until - timedelta(days=1)
    if start >= until:
        raise typer.BadParameter("--since must be before --now", param_hint="--since")
    report_to = errors if as_json else console  # --json keeps stdout for the findings
    with friendly_errors():
        known_good = configured_suppressions(folder=existing_folder(suppressions, "--suppressions")
                                             if suppressions else None)
        catalog = load_catalog()
        source, problems = (cluster_source, []) if cluster_source else _folder_source(logs, until)
        coverage = folder_coverage(catalog, source, start, until)
        if not coverage.has_data:
            print_coverage(coverage, report_to)
            where = f"database {kusto_database} of {kusto_cluster}" if cluster_source else str(logs)
            errors.print(f"[red]nothing evaluated:[/] no known log table in {where} has rows from {moment(start)} "
                         f"to {moment(until)}; check the folder and --since/--now")
            raise typer.Exit(exit_codes.NO_DATA)
        run = audit_catalog(catalog, source, start, until)
    findings = known_good.apply(run.findings, until)
    if as_json:
        console.print_json(json.dumps([f.model_dump(mode="json") for f in findings]))
    else:
        shown = [f for f in findings if not f.suppression]
        print_findings(rows_of_findings(shown))
        print_suppressed(rows_of_findings(f for f in findings if f.suppression))
        suppressed = len(findings) - len(shown)
        console.print(f"{plural(len(shown), 'finding')} in {plural(run.windows, 'detection window')}"
                      + (f", {suppressed} suppressed" if suppressed else ""))
    print_coverage(coverage, report_to)
    if problems:
        report_to.print(f"[yellow]{plural(len(problems), 'problem')} in the logs (listed above): the findings "
                        "do not cover those records or files[/]")
    raise typer.Exit(exit_codes.audit_exit(bool(run.errors), coverage, unreadable=bool(problems)))


def _folder_source(logs: Path | None, now: datetime) -> tuple[LogSource, list[LoadProblem]]:
    assert logs is not None  # chosen_kusto_source asks for --logs when there is no cluster
    source, report = load_logs_reported(logs, now)
    return source, report.problems


def show_trail(principal: str = typer.Argument(..., help="The workload identity: object id, app id, application "
                                               "object id or display name, or a unique prefix of one"),
               logs: Path = LOGS, now: str | None = NOW,
               directory: Path | None = typer.Option(None, "--directory", help="Directory snapshot file "
                                                     "(`wiaudit directory export`) to resolve names with; default: "
                                                     "the identities in the logs"),
               since: str | None = typer.Option(None, "--since", help="Start (UTC); default: 7 days before --now"),
               logic_app_interval: str | None = typer.Option(
                   None, "--logic-app-interval", help="Longest gap between a sign-in and a Logic App run shown as "
                   "probably linked, e.g. 90s or 2m; default: the LOGIC_APP_LINK_INTERVAL setting (2m)"),
               ) -> None:
    """The merged timeline of one identity: sign-ins, Azure activity, directory changes, Key Vault, Graph, and the
    Logic App runs its API connections probably (or certainly) made."""
    existing_folder(logs, "--logs")
    until = parse_moment(now, "--now") or utc_now()
    start = parse_moment(since, "--since") or until - timedelta(days=7)
    interval = _logic_app_interval(logic_app_interval)
    with friendly_errors():
        source = load_logs(logs, until)
        known = (directory_identities(SnapshotFileDirectory(directory).inventory()) if directory
                 else log_identities(source, start - NAMES_LOOKBACK, until))
        identity = resolve_identity(principal, known)
        links = logic_app_links(source, [identity.id, *identity.aliases], start, until, interval=interval,
                                connections=read_setting("LOGIC_APP_CONNECTIONS"))
        events = sorted([*trail(source, [identity.id, *identity.aliases], start, until), *trail_events(links)],
                        key=lambda event: (event.time, event.source))
    table = Table(title=f"Activity trail of {identity.label}", expand=True)
    for column in ("Time (UTC)", "Source", "Action", "IP", "Detail"):
        table.add_column(column)
    for event in events:
        ip = f"{event.ip} (from sign-in)" if event.ip_from_sign_in else event.ip
        table.add_row(f"{event.time:%Y-%m-%d %H:%M:%S}", event.source, event.action, ip, event.detail)
    console.print(table)
    console.print(plural(len(events), "event"))
    if links:
        console.print(summary(links, interval))


def _logic_app_interval(option: str | None) -> timedelta:
    """--logic-app-interval, checked like the setting it overrides."""
    if option is None:
        with friendly_errors():
            return read_setting("LOGIC_APP_LINK_INTERVAL")
    try:
        return BY_NAME["LOGIC_APP_LINK_INTERVAL"].parse(option)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--logic-app-interval") from None
