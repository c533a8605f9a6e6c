"""`wiaudit sample-tenant` and `wiaudit demo`: the bundled sample tenant, end to end."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from shared.audit.local import local_store
from shared.audit.pipeline import AuditOutcome
from shared.audit.sample import sample_pipeline
from shared.catalog.loader import load_catalog
from shared.cli import exit_codes
from shared.cli.common import console, errors, friendly_errors
from shared.cli.coverage_view import print_coverage
from shared.cli.findings_view import print_findings, rows_of_stored
from shared.cli.logs import load_logs
from shared.coverage import AUDIT_RULES
from shared.local.home import local_home
from shared.posture.catalog import load_checks
from shared.sample_tenant.generator import MIN_SERVICE_PRINCIPALS, generate
from shared.sample_tenant.manifest import Manifest
from shared.store.model import StoredFinding
from shared.store.tables import TableFindingStore
from shared.text import plural

HOME_HELP = "the local home: WIAUDIT_HOME, or .wiaudit in the project"


def register(app: typer.Typer) -> None:
    app.command("sample-tenant")(sample_tenant)
    app.command("demo", epilog=exit_codes.HELP)(demo)


def _generate(out: Path, seed: int, service_principals: int, days: int) -> None:
    with Progress(console=errors, transient=True) as progress, friendly_errors():
        task = progress.add_task("generating sample tenant", total=days + 1)
        generate(out, seed=seed, service_principals=service_principals, days=days,
                 progress=lambda done, total: progress.update(task, completed=done, total=total))


def sample_tenant(out: Path = typer.Option(None, "--out", help=f"Folder to write the tenant to; default: sample-tenant "
                                                               f"in {HOME_HELP}"),
                  seed: int = typer.Option(7, "--seed", help="Same seed, same tenant"),
                  service_principals: int = typer.Option(40, "--service-principals", min=MIN_SERVICE_PRINCIPALS),
                  days: int = typer.Option(21, "--days", min=8, help="Days of logs, ending at the tenant's 'now'"),
                  ) -> None:
    """Generate a deterministic sample tenant: directory snapshot, logs of every table, labelled attack stories."""
    out = out or local_home() / "sample-tenant"
    if out.exists() and any(out.iterdir()):
        raise typer.BadParameter(f"{out} is not empty; choose a new folder", param_hint="--out")
    _generate(out, seed, service_principals, days)
    console.print(f"sample tenant written to {out}: directory.json, logs/, manifest.json")


def demo(tenant: Path = typer.Option(None, "--tenant", help="Sample tenant folder (generated if missing); default: "
                                                           f"sample-tenant in {HOME_HELP}"),
         outbox: Path = typer.Option(None, "--outbox", help="Where the Teams card and the email are written; "
                                                            f"default: outbox in {HOME_HELP}"),
         ) -> None:
    """Audit the bundled sample tenant end to end: detect, enrich, store in Azurite, notify to an outbox."""
    tenant = tenant or local_home() / "sample-tenant"
    outbox = outbox or local_home() / "outbox"
    if not (tenant / "manifest.json").is_file():
        console.print(f"[bold]Generating the sample tenant[/] in {tenant}")
        _generate(tenant, seed=7, service_principals=40, days=21)
    with friendly_errors():
        manifest = Manifest.load(tenant / "manifest.json", load_catalog(), load_checks())
        console.print("[bold]Opening the findings store[/] (the project's Azurite, started if it is not running)")
        with local_store() as store:
            source = load_logs(tenant / "logs", manifest.now_time)
            pipeline = sample_pipeline(tenant, source, store, outbox, progress=lambda line: errors.print(f"  {line}"))
            manifest = manifest.without(pipeline.config.disabled)
            console.print(f"[bold]Auditing[/] as of {manifest.now_time:%Y-%m-%d %H:%M} UTC")
            outcome = pipeline.run(trigger="demo")
            new = [finding for finding_id in outcome.new_findings if (finding := store.get_finding(finding_id))]
            stored = all_findings(store)
    written = [path for n in pipeline.notifiers for path in n.written]
    if pipeline.notices is not None:
        written += pipeline.notices.sender.written
    _report(outcome, new, stored, manifest, written)
    raise typer.Exit(exit_codes.audit_exit(bool(manifest.missed(stored) or outcome.run.errors), outcome.run.coverage))


def all_findings(store: TableFindingStore) -> list[StoredFinding]:
    findings, token = store.query_findings(limit=500)
    while token:
        page, token = store.query_findings(limit=500, continuation=token)
        findings += page
    return findings


def _report(outcome: AuditOutcome, new: list[StoredFinding], stored: list[StoredFinding], manifest: Manifest,
            outbox_files: list[Path]) -> None:
    run = outcome.run
    console.print(f"Run {run.id}: [bold]{run.status}[/], {plural(sum(len(w) for w in run.windows.values()), 'window')}")
    for key, message in run.errors.items():
        console.print(f"  [red]{key}:[/] {message}")
    if new:
        console.print(f"\n[bold]Digest: {plural(len(new), 'new finding')}[/]")
        print_findings(rows_of_stored(new), label=lambda f: (s.id if (s := manifest.scenario_of(f)) else ""))
    else:
        console.print(f"\n[bold]Nothing new[/] since the last run: all {plural(len(stored), 'finding')} "
                      "were already stored.")
    for path in outbox_files:
        console.print(f"outbox: {path}")
    if run.coverage is not None:
        print_coverage(run.coverage, console, AUDIT_RULES)
    missed = manifest.missed(stored)
    stories = len({scenario.id for scenario in manifest.scenarios})
    console.print(f"\n[bold]{len(manifest.scenarios) - len(missed)} of {len(manifest.scenarios)} expected findings of "
                  f"the {stories} injected stories found[/] in the findings store")
    for scenario in missed:
        console.print(f"[red]missed:[/] {scenario.id}: {scenario.title}")
    console.print("\nQuery the findings:\n  .venv/bin/wiaudit findings list --severity high\n"
                  "  .venv/bin/wiaudit serve    # then, in another shell:\n"
                  "  curl -H \"x-api-key: $WIAUDIT_API_KEY\" 'http://127.0.0.1:7071/api/findings?severity=medium'",
                  soft_wrap=True)  # commands to copy: never broken across lines
