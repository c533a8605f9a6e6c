"""`wiaudit directory export`: snapshot a real tenant's workload identities for offline audits."""

from __future__ import annotations

from pathlib import Path

import typer

from shared.cli.common import console, errors, friendly_errors

app = typer.Typer(no_args_is_help=True, help="The tenant's directory of workload identities.")


@app.command("export")
def export(out: Path = typer.Option(..., "--out", help="File to write the snapshot JSON to")) -> None:
    """Read applications, service principals, credentials, owners and permissions from Microsoft Graph
    (az login, or the managed identity) into the snapshot format the sample tenant uses."""
    from azure.core.exceptions import ClientAuthenticationError

    from shared.audit.build import azure_credential
    from shared.directory.export import export_directory
    from shared.directory.graph import GraphDirectoryError, graph_directory_from_settings

    with friendly_errors():
        try:
            with graph_directory_from_settings(azure_credential()) as directory:
                errors.print("reading the directory from Microsoft Graph ...")
                snapshot = export_directory(directory, out)
        except (GraphDirectoryError, ClientAuthenticationError) as error:
            errors.print(f"[red]error:[/] {str(error).splitlines()[0]}")
            raise typer.Exit(2) from None
    console.print(f"wrote {out}: {len(snapshot.applications)} applications, "
                  f"{len(snapshot.servicePrincipals)} service principals, {len(snapshot.directoryRoles)} roles")
