"""`wiaudit sample-tenant` and `wiaudit demo`: the bundled sample tenant, end to end."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import typer
from rich.progress import Progress

from shared.catalog.loader import load_catalog
from shared.cli.common import console, errors, friendly_errors
from shared.cli.findings_view import print_findings
from shared.cli.logs import audit_folder
from shared.sample_tenant.generator import generate
from shared.sample_tenant.manifest import Manifest

DEFAULT_TENANT = Path(".wiaudit/sample-tenant")
DEMO_DAYS = 7


def register(app: typer.Typer) -> None:
    app.command("sample-tenant")(sample_tenant)
    app.command("demo")(demo)


def _generate(out: Path, seed: int, service_principals: int, days: int) -> None:
    with Progress(console=errors, transient=True) as progress, friendly_errors():
        task = progress.add_task("generating sample tenant", total=days + 1)
        generate(out, seed=seed, service_principals=service_principals, days=days,
                 progress=lambda done, total: progress.update(task, completed=done, total=total))


def sample_tenant(out: Path = typer.Option(DEFAULT_TENANT, "--out", help="Folder to write the tenant to"),
                  seed: int = typer.Option(7, "--seed", help="Same seed, same tenant"),
                  service_principals: int = typer.Option(40, "--service-principals", min=6),
                  days: int = typer.Option(21, "--days", min=8, help="Days of logs, ending at the tenant's 'now'"),
                  ) -> None:
    """Generate a deterministic sample tenant: directory snapshot, logs of every table, labelled attack stories."""
    if out.exists() and any(out.iterdir()):
        raise typer.BadParameter(f"{out} is not empty; choose a new folder", param_hint="--out")
    _generate(out, seed, service_principals, days)
    console.print(f"sample tenant written to {out}: directory.json, logs/, manifest.json")


def demo(tenant: Path = typer.Option(DEFAULT_TENANT, "--tenant", help="Sample tenant folder (generated if missing)")
         ) -> None:
    """Audit the bundled sample tenant end to end and show which injected story each finding matched."""
    if not (tenant / "manifest.json").is_file():
        console.print(f"generating the sample tenant in {tenant} ...")
        _generate(tenant, seed=7, service_principals=40, days=21)
    with friendly_errors():
        manifest = Manifest.load(tenant / "manifest.json", load_catalog())
        now = manifest.now_time
        run = audit_folder(tenant / "logs", now - timedelta(days=DEMO_DAYS), now)
    print_findings(run.findings, label=lambda f: (s.id if (s := manifest.scenario_of(f)) else ""))
    missed = manifest.missed(run.findings)
    found = len(manifest.scenarios) - len(missed)
    console.print(f"[bold]{found} of {len(manifest.scenarios)} injected scenarios found[/]")
    for scenario in missed:
        console.print(f"[red]missed:[/] {scenario.id}: {scenario.title}")
    raise typer.Exit(1 if missed or run.errors else 0)
