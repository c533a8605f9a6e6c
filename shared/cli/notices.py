"""`wiaudit notices --dry-run`: who the owner notices would go to, and what each would say.

It reads the credential inventory the latest audit stored (Azurite under .wiaudit unless the FINDINGS_*
settings name a store) and the notices already sent, and sends nothing: the audit run sends them, when
OWNER_NOTICES is true (the demo always writes them to its outbox).
"""

from __future__ import annotations

import typer

from shared.cli.common import console, errors, friendly_errors
from shared.notices.plan import NoticePlan, NoticeSettings
from shared.notices.render import advice, subject_of
from shared.notices.run import pending_notices
from shared.text import moment, plural, safe_text, short_id


def register(app: typer.Typer) -> None:
    app.command(name="notices")(notices)


def notices(dry_run: bool = typer.Option(False, "--dry-run", help="Show who would get what; send nothing")) -> None:
    """Owner notices of expiring, expired and unused credentials: who would get what (--dry-run)."""
    if not dry_run:
        errors.print("[red]error:[/red] owner notices are sent by the audit (`wiaudit run`, the Function) when "
                     "OWNER_NOTICES is true; `wiaudit notices --dry-run` shows who would get what")
        raise typer.Exit(2)
    from shared.audit.local import local_store

    with friendly_errors():
        settings = NoticeSettings.from_settings()
        with local_store() as store:
            snapshot = store.inventory_snapshot()
            if snapshot is None:
                errors.print("[red]error:[/red] no credential inventory is stored yet: run an audit first "
                             "(`wiaudit demo` or `wiaudit run`)")
                raise typer.Exit(2)
            taken_at = snapshot[1]
            plan = pending_notices(store, store.all_credentials(), taken_at, settings)
    _print(plan, settings, taken_at)


def _print(plan: NoticePlan, settings: NoticeSettings, taken_at) -> None:
    state = "on" if settings.enabled else "off (OWNER_NOTICES is not true: the audit sends none)"
    console.print(f"Owner notices as of the inventory of {moment(taken_at)}; notices are {state}.")
    if settings.domains:
        console.print(f"Only to mailboxes in {', '.join(settings.domains)}.")
    if not plan.notices:
        console.print("Nobody would get a notice: every concern has been told already, or there is none.")
    for notice in plan.notices:
        console.print()
        console.print(f"[bold]To {safe_text(notice.recipient, 320)}[/bold] ({safe_text(notice.owner, 200)}): "
                      f"{subject_of(notice)}", soft_wrap=True)
        by_credential: dict[str, list] = {}
        for item in notice.items:
            by_credential.setdefault(item.key, [item.record, []])[1].append(item.concern)
        for record, concerns in by_credential.values():
            name = safe_text(record.display_name, 80) or record.type
            console.print(f"  {safe_text(record.principal_name, 120)} · {record.type} {name} "
                          f"({short_id(record.key_id)}) · {', '.join(concerns)}", soft_wrap=True)
            console.print(f"    {advice(concerns, record, taken_at, settings.unused_for)}", soft_wrap=True)
    if plan.unowned:
        console.print()
        console.print(f"[bold]No owner to notify[/bold] ({plural(len(plan.unowned), 'application')}, listed in the "
                      "digest instead):")
        for app in plan.unowned:
            console.print(f"  {safe_text(app.principal_name, 120)}: {plural(app.credentials, 'credential')} — "
                          f"{app.reason}", soft_wrap=True)
