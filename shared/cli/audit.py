"""`wiaudit run` (the production audit from app settings) and `wiaudit findings list`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from shared.audit.local import local_store
from shared.catalog.loader import rule_names
from shared.cli import exit_codes
from shared.cli.common import SEVERITY_STYLE, console, errors, friendly_errors, parse_moment
from shared.cli.coverage_view import print_coverage
from shared.coverage import AUDIT_RULES
from shared.filters import stored_detection, stored_principal
from shared.text import plural

findings_app = typer.Typer(no_args_is_help=True, help="Findings in the store (Azurite locally, unless the "
                                                      "FINDINGS_* settings name one).")


def register(app: typer.Typer) -> None:
    app.command("run", epilog=exit_codes.HELP)(run)
    app.command("serve")(serve)
    app.add_typer(findings_app, name="findings")


def run() -> None:
    """Run one audit against Azure with the app settings (Log Analytics, Graph, Table Storage, notifiers)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

    from shared.audit.build import pipeline_from_settings

    with friendly_errors():
        try:
            outcome = pipeline_from_settings().run(trigger="manual")
        except ClientAuthenticationError as error:
            errors.print("[red]error:[/] no usable Azure credential. Sign in with `az login` (or set AZURE_CLIENT_ID "
                         f"for a managed identity). Details: {str(error).splitlines()[0]}")
            raise typer.Exit(2) from None
        except HttpResponseError as error:
            errors.print(f"[red]error:[/] Azure refused the request ({error.status_code}): {error.message}. "
                         "See README 'Run against a real tenant' for the roles and permissions needed.")
            raise typer.Exit(2) from None
        except ServiceRequestError as error:
            errors.print(f"[red]error:[/] cannot reach an Azure endpoint: {str(error).splitlines()[0]}. Check the "
                         "endpoint settings and the network.")
            raise typer.Exit(2) from None
    run_record = outcome.run
    console.print(f"run {run_record.id}: {run_record.status}; {plural(len(outcome.new_findings), 'new finding')}")
    if outcome.noticed:
        console.print(f"owner notices sent to {plural(len(outcome.noticed), 'owner')}")
    for key, message in run_record.errors.items():
        console.print(f"  [red]{key}:[/] {message}")
    if run_record.coverage is not None:
        print_coverage(run_record.coverage, console, AUDIT_RULES)
    raise typer.Exit(exit_codes.audit_exit(run_record.status != "succeeded", run_record.coverage))


@findings_app.command("list")
def list_findings(severity: str = typer.Option(None, "--severity", help="Minimum severity"),
                  since: str = typer.Option(None, "--since", help="Stored or updated since (UTC)"),
                  detection: str = typer.Option(None, "--detection", help="Detection id or file name, or a unique "
                                                "prefix of either"),
                  principal: str = typer.Option(None, "--principal", help="Workload identity: object id, app id, "
                                                "application object id or display name"),
                  status: str = typer.Option(None, "--status", help="new, acknowledged, resolved, false_positive or "
                                             "suppressed"),
                  limit: int = typer.Option(100, "--limit", min=1, max=500),
                  as_json: bool = typer.Option(False, "--json", help="Print JSON")) -> None:
    """Stored findings, newest first."""
    with friendly_errors(), local_store() as store:
        detection_id = stored_detection(store, detection, rule_names()) if detection else None
        principal_id = stored_principal(store, principal) if principal else None
        findings, more = store.query_findings(since=parse_moment(since, "--since"), min_severity=severity,
                                              detection=detection_id, principal=principal_id, status=status,
                                              limit=limit)
    if as_json:
        console.print_json(json.dumps([finding.model_dump(mode="json") for finding in findings]))
        return
    table = Table(title=f"{plural(len(findings), 'finding')}{' (more: raise --limit)' if more else ''}", expand=True)
    for column in ("Severity", "Detection", "Principal", "Status", "Seen", "Last detected", "Id"):
        table.add_column(column)
    for finding in findings:
        table.add_row(f"[{SEVERITY_STYLE[finding.severity]}]{finding.severity}[/]", finding.detection_name,
                      finding.principal_name or finding.principal_id, finding.status, f"{finding.occurrences}x",
                      f"{finding.last_detected:%Y-%m-%d %H:%M}", finding.id)
    console.print(table)


def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on"),
          port: int = typer.Option(7071, "--port", min=1, max=65535),
          logs: Path | None = typer.Option(None, "--logs", help="Folder of log files the web pages read an identity's "
                                           "trail from (as for `wiaudit trail`)")) -> None:
    """Serve the findings API and its web pages locally (the same FastAPI app the Function hosts); requires
    WIAUDIT_API_KEY."""
    import uvicorn

    from shared.api.app import create_local_api
    from shared.cli.common import existing_folder, utc_now

    source = None
    if logs is not None:
        from shared.cli.logs import load_logs

        existing_folder(logs, "--logs")
        with friendly_errors():
            source = load_logs(logs, utc_now())
    with friendly_errors(), local_store() as store:
        api = create_local_api(lambda: store, trail_source=(lambda: source) if source else None)
        console.print(f"findings API on http://{host}:{port}/api (OpenAPI: /api/openapi.json); send the x-api-key "
                      f"header. Web pages: http://{host}:{port}/api/ui/ (sign in with the same key)", soft_wrap=True)
        uvicorn.run(api, host=host, port=port, log_level="warning")
