"""`wiaudit hunt`: run any KQL over a folder of logs, with ago() and now() pinned to --now."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from shared.cli import exit_codes
from shared.cli.common import console, errors, friendly_errors, parse_moment, utc_now
from shared.cli.kusto_options import KUSTO_CLUSTER, KUSTO_DATABASE, chosen_kusto_source
from shared.cli.logs import OPTIONAL_LOGS, load_logs
from shared.hunt.formats import cell, columns_of, plain, to_csv
from shared.hunt.outcome import FAILED, RAN, REFUSED, Outcome, run_queries
from shared.hunt.queries import HuntQuery, collect
from shared.logsource.embedded import EmbeddedLogSource
from shared.text import moment, plural

HELP = (f"Exit codes: {exit_codes.OK} every query ran; {exit_codes.FAILED} a query was refused or failed (the others "
        f"ran); {exit_codes.USAGE} bad input; {exit_codes.NO_DATA} the logs have no rows from --since to --now.")


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def register(app: typer.Typer) -> None:
    app.command("hunt", epilog=HELP)(hunt)


def hunt(target: str = typer.Argument("-", help="KQL text, a .kql file, a Sentinel analytic-rule or hunting-query "
                                                "YAML, or a folder of them; - (the default) reads KQL from stdin"),
         logs: Path | None = OPTIONAL_LOGS,
         now: str | None = typer.Option(None, "--now", help="What ago() and now() read (UTC); default: the current "
                                        "time"),
         since: str | None = typer.Option(None, "--since", help="Only rows from this time on (UTC), like a Log "
                                          "Analytics time range; also what a hunting query's {{StartTimeISO}} "
                                          "reads. Default: every row, and a day before --now for {{StartTimeISO}}"),
         output: Format = typer.Option(Format.table, "--format", help="table, json or csv (csv: one query only)"),
         kusto_cluster: str | None = KUSTO_CLUSTER, kusto_database: str | None = KUSTO_DATABASE,
         ) -> None:
    """Run KQL over a folder of logs, as Log Analytics would, or over a Kusto database: a refused construct is
    named with its line and column, and the other queries of a folder still run. A summary at the end counts what
    ran, was refused, failed."""
    until = parse_moment(now, "--now") or utc_now()
    cluster_source = chosen_kusto_source(logs, kusto_cluster, kusto_database, now=until)
    start = parse_moment(since, "--since")
    if start is not None and start >= until:
        raise typer.BadParameter("--since must be before --now", param_hint="--since")
    with friendly_errors():
        queries = collect(sys.stdin.read() if target == "-" else target)
    if output is Format.csv and len(queries) > 1:
        raise typer.BadParameter(f"csv takes one query; {target} holds {len(queries)}", param_hint="--format")
    if cluster_source is not None:
        if start is not None:
            errors.print("note: a Kusto database has no query time range: --since fills {{StartTimeISO}}, and each "
                         "query reads the rows it selects itself")
        with cluster_source:
            outcomes = run_queries(cluster_source, queries, start or until - timedelta(days=1), until)
    else:
        with friendly_errors():
            source = load_logs(logs, until)
            if not restrict(source, start, until):
                errors.print(f"[red]no data:[/] no log table in {logs} has rows "
                             f"{'from ' + moment(start) + ' ' if start else ''}up to {moment(until)}")
                raise typer.Exit(exit_codes.NO_DATA)
        outcomes = run_queries(source, queries, start or until - timedelta(days=1), until)
    show(outcomes, output)
    raise typer.Exit(exit_codes.OK if all(o.status == RAN for o in outcomes) else exit_codes.FAILED)


def restrict(source: EmbeddedLogSource, since: datetime | None, now: datetime) -> bool:
    """Keep the rows from `since` to `now` (a Log Analytics query's time range); whether any row is left.

    The loaded copy of the folder is shared by later commands and opened read-only: each table is shadowed by a
    temporary one holding the range (a bare table name finds the temporary table first)."""
    connection = source.database.connection
    left = 0
    log_tables = connection.execute("SELECT DISTINCT table_name FROM information_schema.columns "
                                    "WHERE column_name = 'TimeGenerated' AND table_catalog = current_database() "
                                    "ORDER BY table_name").fetchall()
    for (table,) in log_tables:
        connection.execute(f'CREATE OR REPLACE TEMP TABLE "{table}" AS SELECT * FROM main."{table}" '
                           "WHERE NOT coalesce(TimeGenerated > ? OR TimeGenerated < ?, false)",
                           [now, since or datetime.min.replace(tzinfo=now.tzinfo)])
        left += connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
    return left > 0


def show(outcomes: list[Outcome], output: Format) -> None:
    if output is Format.json and len(outcomes) > 1:
        console.print_json(json.dumps([_json(o) for o in outcomes]))
    elif output is Format.json and outcomes[0].status == RAN:
        console.print_json(json.dumps(plain(outcomes[0].rows)))
    elif output is Format.csv and outcomes[0].status == RAN:
        sys.stdout.write(to_csv(outcomes[0].rows))
    else:
        for outcome in outcomes:
            if outcome.status == RAN and output is Format.table:
                console.print(_table(outcome.query, outcome.rows))
    for outcome in outcomes:
        if outcome.status != RAN:
            errors.print(f"[{'yellow' if outcome.status == REFUSED else 'red'}]{outcome.status}:[/] "
                         f"{escape(outcome.query.name)}: {escape(outcome.reason or '')}", soft_wrap=True)
    if len(outcomes) > 1 or outcomes[0].status != RAN:
        counts = {status: sum(o.status == status for o in outcomes) for status in (RAN, REFUSED, FAILED)}
        errors.print(f"{plural(len(outcomes), 'query', 'queries')}: {counts[RAN]} ran, {counts[REFUSED]} refused, "
                     f"{counts[FAILED]} failed")


def _json(outcome: Outcome) -> dict:
    return {"query": outcome.query.name, "status": outcome.status, "rows": plain(outcome.rows),
            "refused": outcome.feature, "reason": outcome.reason}


def _table(query: HuntQuery, rows: list) -> Table:
    table = Table(title=f"{query.name}: {plural(len(rows), 'row')}", title_justify="left")
    names = columns_of(rows)
    for name in names:
        table.add_column(escape(name))
    for row in rows:
        table.add_row(*(escape(cell(row.get(name))) for name in names))
    return table
