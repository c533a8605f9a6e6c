"""`wiaudit tiers refresh`: rewrite the tier model's copy from Cloud-Architekt/AzurePrivilegedIAM."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from shared.cli.common import console, errors

app = typer.Typer(no_args_is_help=True, help="The tier model: which permissions and roles are tier 0, 1 or 2.")


@app.command("refresh")
def refresh_command(
    ref: str = typer.Option("main", "--ref", help="Upstream branch, tag or commit to copy"),
    raw_url: str = typer.Option(None, "--raw-url", help="Raw file host of the repository (a mirror's)"),
    api_url: str = typer.Option(None, "--api-url", help="GitHub API URL of the repository (a mirror's)"),
) -> None:
    """Copy the classification files at REF into shared/directory/tiers/ with their licence and SOURCE.md.
    Review the diff and commit it: the tiers of permissions and roles decide severities and posture findings."""
    from shared.directory.tiers.refresh import API_URL, RAW_URL, RefreshError, refresh

    try:
        result = refresh(ref, raw_url=raw_url or RAW_URL, api_url=api_url or API_URL, now=datetime.now(UTC))
    except RefreshError as error:
        errors.print(f"[red]error:[/] {error}; the copy is unchanged")
        raise typer.Exit(2) from None
    counts = ", ".join(f"{name} {count}" for name, count in result.counts.items())
    console.print(f"copied commit {result.commit}: {counts} entries")
