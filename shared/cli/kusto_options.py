"""`--kusto-cluster URL --kusto-database DB`: read the logs from Azure Data Explorer or a Fabric Eventhouse instead of
a folder (for `detect`, and for `hunt` when it offers the same). Table names come from KUSTO_TABLES; the credential is
DefaultAzureCredential (`az login` on a workstation)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from shared.cli.common import existing_folder
from shared.logsource.kusto import KustoSource

KUSTO_CLUSTER = typer.Option(None, "--kusto-cluster", help="Query URI of an Azure Data Explorer cluster or Fabric "
                             "Eventhouse to read the logs from instead of --logs (tables renamed by KUSTO_TABLES)")
KUSTO_DATABASE = typer.Option(None, "--kusto-database", help="The database of --kusto-cluster that holds the logs")


def chosen_kusto_source(logs: Path | None, cluster: str | None, database: str | None,
                        now: datetime | None = None) -> KustoSource | None:
    """The cluster when --kusto-cluster is given (then --logs must not be), else None after checking --logs.
    `now` pins what now() and ago() read there, as --now does for a folder."""
    if cluster is None:
        if database is not None:
            raise typer.BadParameter("needs --kusto-cluster", param_hint="--kusto-database")
        if logs is None:
            raise typer.BadParameter("give a folder of logs, or --kusto-cluster and --kusto-database",
                                     param_hint="--logs")
        existing_folder(logs, "--logs")
        return None
    if logs is not None:
        raise typer.BadParameter("read either a folder (--logs) or a cluster (--kusto-cluster), not both",
                                 param_hint="--logs")
    if not database:
        raise typer.BadParameter("--kusto-cluster needs the database that holds the logs",
                                 param_hint="--kusto-database")
    from shared.audit.build import azure_credential
    from shared.settings import read_setting

    try:
        return KustoSource(cluster, database, azure_credential(), tables=read_setting("KUSTO_TABLES"),
                           timeout=read_setting("KUSTO_TIMEOUT_SECONDS"), now=now)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--kusto-cluster") from None
