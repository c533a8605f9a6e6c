"""`wiaudit findings suppress`: write a suppression file for one stored finding, for review."""

from __future__ import annotations

from datetime import date

import typer

from shared.audit.local import local_store
from shared.cli.common import console, friendly_errors, utc_now
from shared.cli.triage import ID_HELP, default_analyst, find_one


def register(findings_app: typer.Typer) -> None:
    findings_app.command("suppress")(suppress)


def suppress(finding_id: str = typer.Argument(..., help=ID_HELP),
             reason: str = typer.Option(..., "--reason", help="Why it is known-good"),
             until: str = typer.Option(..., "--until", help="Last day it applies (YYYY-MM-DD), at most a year ahead"),
             owner: str = typer.Option(None, "--owner", help="Who answers for it (default: your git email, else your "
                                                                "OS user)")) -> None:
    """Write a suppression file matching this finding's detection and principal (the narrowest), print its path."""
    from shared.catalog.loader import rule_names
    from shared.suppressions.load import suppressions_folder
    from shared.suppressions.write import write_suppression

    try:
        last_day = date.fromisoformat(until)
    except ValueError:
        raise typer.BadParameter(f"{until!r} is not a date such as 2027-03-31", param_hint="--until") from None
    with friendly_errors():
        with local_store() as store:
            finding = find_one(store, finding_id)
        path = write_suppression(suppressions_folder(), finding, rule_names(), reason, owner or default_analyst(),
                                 last_day, utc_now().date())
    console.print(f"wrote {path}: review it and commit it; the next audit stores this finding as suppressed")
