"""The `wiaudit` command line: one Typer app, a module per command group."""

from __future__ import annotations

import typer

from shared.cli import (
    audit,
    credentials,
    detections,
    directory,
    hunt,
    logs,
    notices,
    sample,
    store,
    suppress,
    tiers,
    triage,
)

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="Audit Microsoft Entra workload identities: service principals and managed identities.")
app.add_typer(detections.app, name="detections")
app.add_typer(directory.app, name="directory")
app.add_typer(store.app, name="store")
app.add_typer(tiers.app, name="tiers")
logs.register(app)
hunt.register(app)
sample.register(app)
audit.register(app)
suppress.register(audit.findings_app)
triage.register(audit.findings_app)
credentials.register(app)
notices.register(app)


def main() -> None:
    app()
