"""`wiaudit credentials`: the credential inventory as a table, CSV or JSON.

Source: the inventory the latest audit stored (Azurite under .wiaudit unless the FINDINGS_* settings
name a store), or computed here, offline, from a sample tenant folder (`--tenant`) or a directory
snapshot and a folder of logs (`--directory`, `--logs`, `--now`) with the posture engine.

Filters are relative to the inventory's own time (the audit's, or `--now`), as in GET /api/credentials.
CSV is for spreadsheets: one row per credential, RFC 4180 quoting, ISO 8601 UTC dates, lists joined
with "; ". Names are whatever an app's creator typed, so a text cell that a spreadsheet would run as
a formula (starting with = + - @ or a tab) gets a leading apostrophe; ids and dates are left alone.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from shared.cli.common import console, errors, existing_folder, friendly_errors, parse_moment, utc_now
from shared.posture.hygiene import CredentialHygiene, credential_hygiene, hygiene_counts, parse_span
from shared.posture.model import CredentialRecord
from shared.store.credentials import is_managed
from shared.text import moment, plural, safe_text

STATUS_STYLE = {"expired": "bold red", "expiring": "yellow", "active": "green", "no end date": "magenta"}
CSV_COLUMNS = ("identity", "identity_id", "identity_type", "app_id", "held_on", "credential", "key_id", "type",
               "thumbprint", "issuer", "subject", "start", "end", "status", "days_to_expiry", "lifetime_days",
               "last_used", "usage_known", "owners", "privileged", "privileged_reasons")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CELL_MAX = 120
DEFAULT_USAGE_DAYS = 30


def register(app: typer.Typer) -> None:
    app.command("credentials")(credentials)


def credentials(
    expiring_within: str = typer.Option(None, "--expiring-within", help="Not yet expired and ending within this "
                                                                         "span: 30d, 12h or ISO 8601 (P30D)"),
    unused_for: str = typer.Option(None, "--unused-for", help="No sign-in with it for this span (30d, P4W)"),
    privileged: bool = typer.Option(False, "--privileged", help="Only credentials of privileged identities"),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV (one row per credential) for a spreadsheet"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON"),
    tenant: Path = typer.Option(None, "--tenant", help="Compute offline from a sample tenant folder "
                                                      "(directory.json, logs/, manifest.json)"),
    directory: Path = typer.Option(None, "--directory", help="Compute offline from this directory snapshot file"),
    logs: Path = typer.Option(None, "--logs", help="With --directory: the folder of sign-in logs"),
    now: str = typer.Option(None, "--now", help="Offline: the inventory's 'now' (UTC); default the tenant's "
                                                "manifest or the current time"),
) -> None:
    """The credential inventory: every secret, certificate and federated credential, its expiry and last use."""
    if as_csv and as_json:
        raise typer.BadParameter("choose one of --csv and --json", param_hint="--csv")
    within = _span(expiring_within, "--expiring-within")
    unused = _span(unused_for, "--unused-for")
    only_privileged = True if privileged else None
    with friendly_errors():
        if tenant is not None or directory is not None or logs is not None:
            inventory, taken_at = _offline(tenant, directory, logs, now, unused)
            source = f"computed from {tenant or directory}"
        else:
            if now is not None:
                raise typer.BadParameter("--now applies to an offline inventory (--tenant or --directory)",
                                         param_hint="--now")
            inventory, taken_at = _stored()
            source = "stored by the latest audit"
    records = [r for r in inventory if taken_at and matches(r, taken_at, within, unused, only_privileged)]
    if as_csv:
        write_csv(records, sys.stdout)
    elif as_json:
        typer.echo(json.dumps([record.model_dump(mode="json") for record in records], indent=2, ensure_ascii=False))
    elif taken_at is None:
        errors.print("No credential inventory is stored yet: run an audit (`make demo`, `wiaudit run`), or compute "
                     "one offline with --tenant DIR or --directory FILE --logs DIR.")
    else:
        print_table(records, f"{plural(len(records), 'credential')} · inventory of {moment(taken_at)}, {source}")
        console.print(hygiene_line(credential_hygiene(inventory, taken_at)))


def _span(text: str | None, option: str) -> timedelta | None:
    if text is None:
        return None
    try:
        return parse_span(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint=option) from None


def hygiene_line(hygiene: CredentialHygiene) -> str:
    """The digest's hygiene numbers, from the same function: `Hygiene of all 44 credentials: Expired 1, ...`."""
    counts = ", ".join(f"{title} {count:,}" for title, count in hygiene_counts(hygiene))
    return f"Hygiene of all {plural(hygiene.credentials, 'credential')} (as in the digest): {counts}"


def _stored() -> tuple[list[CredentialRecord], datetime | None]:
    """The whole stored inventory: the hygiene line counts all of it, the filters apply in memory."""
    from shared.audit.local import local_store

    with local_store() as store:
        snapshot = store.inventory_snapshot()
        records = store.all_credentials() if snapshot else []
    return records, snapshot[1] if snapshot else None


def _offline(tenant: Path | None, directory: Path | None, logs: Path | None, now: str | None,
             unused: timedelta | None) -> tuple[list[CredentialRecord], datetime]:
    if tenant is not None:
        if directory is not None or logs is not None:
            raise typer.BadParameter("give either --tenant or --directory with --logs", param_hint="--tenant")
        existing_folder(tenant, "--tenant")
        directory, logs = tenant / "directory.json", tenant / "logs"
        moment = parse_moment(now, "--now") or _manifest_now(tenant / "manifest.json")
    else:
        if directory is None or logs is None:
            raise typer.BadParameter("--directory and --logs go together", param_hint="--directory")
        moment = parse_moment(now, "--now") or utc_now()
    if not directory.is_file():
        raise typer.BadParameter(f"{directory} is not a file", param_hint="--directory")
    existing_folder(logs, "--logs")
    horizon = -(-unused // timedelta(days=1)) if unused else DEFAULT_USAGE_DAYS  # whole days, rounded up
    return compute_inventory(directory, logs, moment, horizon), moment


def _manifest_now(path: Path) -> datetime:
    if not path.is_file():
        raise typer.BadParameter(f"{path} is missing: is this a sample tenant folder? (else give --now)",
                                 param_hint="--tenant")
    return parse_moment(json.loads(path.read_text(encoding="utf-8"))["now"], "manifest.json now")


def compute_inventory(directory: Path, logs: Path, now: datetime, unused_days: int) -> list[CredentialRecord]:
    """The inventory as the posture engine builds it. Sign-ins are read over at least DEFAULT_USAGE_DAYS (for
    last_used); usage counts as known when the logs reach back `unused_days` (what --unused-for asks about)."""
    from shared.cli.logs import load_logs
    from shared.directory.model import DirectorySnapshot
    from shared.posture.inventory import InventorySettings, build_inventory
    from shared.posture.usage import COVERAGE_GRACE, read_usage

    snapshot = DirectorySnapshot.load(directory)
    source = load_logs(logs, now)
    usage = read_usage(source, now, timedelta(days=max(unused_days, DEFAULT_USAGE_DAYS)) + COVERAGE_GRACE)
    records = build_inventory(snapshot, usage, now, InventorySettings(unused_days=unused_days))
    return sorted(records, key=_expiry_order)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _expiry_order(record: CredentialRecord) -> tuple[bool, datetime, str, str]:
    """Soonest expiry first, no end date last: the stored inventory's order."""
    end = _utc(record.end) if record.end else datetime.max.replace(tzinfo=UTC)
    return record.end is None, end, record.principal_id, record.key_id


def matches(record: CredentialRecord, taken_at: datetime, expiring_within: timedelta | None,
            unused_for: timedelta | None, privileged: bool | None) -> bool:
    """The stored inventory's filters (see TableFindingStore.query_credentials), on a record in memory."""
    taken_at = _utc(taken_at)
    if expiring_within is not None and not (record.end and taken_at < _utc(record.end) < taken_at + expiring_within):
        return False
    if unused_for is not None:
        if is_managed(record):
            return False
        cutoff = taken_at - unused_for
        unused = _utc(record.last_used) < cutoff if record.last_used else record.usage_known
        if not unused:
            return False
    return privileged is None or record.privileged == privileged


def _iso(value: datetime | None) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z") if value else ""


def _cell(text: str | None) -> str:
    """Free text for a spreadsheet: never a formula."""
    text = text or ""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def _owners(record: CredentialRecord) -> str:
    return "; ".join(owner.name for owner in record.owners)


def csv_row(record: CredentialRecord) -> list[str]:
    return [_cell(record.principal_name), record.principal_id, _cell(record.principal_type), record.app_id,
            record.held_on, _cell(record.display_name), record.key_id, record.type, record.thumbprint or "",
            _cell(record.issuer), _cell(record.subject), _iso(record.start), _iso(record.end), record.status,
            "" if record.days_to_expiry is None else str(record.days_to_expiry),
            "" if record.lifetime_days is None else str(record.lifetime_days), _iso(record.last_used),
            str(record.usage_known).lower(), _cell(_owners(record)), str(record.privileged).lower(),
            _cell("; ".join(record.privileged_reasons))]


def write_csv(records: Iterable[CredentialRecord], out) -> None:
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_row(record) for record in records)


def _text(value: str | None, limit: int = CELL_MAX, style: str = "") -> Text:
    """Untrusted text as a Rich Text (never markup), one line, no control or bidi characters."""
    return Text(safe_text(value, limit), style=style)


def _day(value: datetime | None, empty: str) -> str:
    return f"{_utc(value):%Y-%m-%d}" if value else empty


def print_table(records: Sequence[CredentialRecord], title: str) -> None:
    table = Table(title=title, expand=True)
    for column in ("Identity", "Credential", "Type", "End", "Last used", "Owners", "Status", "Privileged"):
        table.add_column(column, overflow="fold")
    for record in records:
        credential = Text.assemble(_text(record.display_name or "(no name)", 60), "\n",
                                   _text(record.key_id, 40, "dim"))
        unseen = "rotated by Azure" if is_managed(record) else "not seen" if record.usage_known else \
            "not seen (logs too short)"
        last_used = _day(record.last_used, unseen)
        days = f" ({record.days_to_expiry:+d}d)" if record.days_to_expiry is not None else ""
        table.add_row(
            _text(record.principal_name or record.principal_id), credential, record.type,
            f"{_day(record.end, '-')}{days}", last_used,
            _text(", ".join(owner.name for owner in record.owners) or "none"),
            Text(record.status, style=STATUS_STYLE.get(record.status, "")),
            Text("yes", style="bold red") if record.privileged else "")
    console.print(table)
