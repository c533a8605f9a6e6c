"""`wiaudit store status|stop`: the project's Azurite, which the local commands start and share."""

from __future__ import annotations

import typer

from shared.cli.common import console

app = typer.Typer(no_args_is_help=True, help="The local findings store: the project's Azurite, started by the first "
                                             "command that needs it and shared by all of them until stopped.")


def _project_azurite():
    from shared.local.home import local_home
    from shared.local.project_azurite import ProjectAzurite

    return ProjectAzurite(local_home())


@app.command("status")
def status() -> None:
    """Whether the project's Azurite is running, where, and where it keeps its data."""
    azurite = _project_azurite()
    running = azurite.status()
    if running is None:
        console.print(f"Azurite is not running (data: {azurite.location})")
        raise typer.Exit(1)
    console.print(f"Azurite is running: process {running.pid}, port {running.port}, data {running.location}")


@app.command("stop")
def stop() -> None:
    """Stop the project's Azurite (it saves its data first); the next command that needs the store starts it."""
    stopped = _project_azurite().stop()
    console.print(f"stopped Azurite (process {stopped.pid})" if stopped else "Azurite was not running")
