"""`wiaudit findings show|ack|resolve|reopen|comment <id>`: one finding explained, and the analyst's triage.

`<id>` is a finding id or a unique prefix of one (the first characters `findings list` shows), resolved by
shared/names.py: a prefix that matches several findings lists them, one that matches none says so; both exit 2.

`--by` names who decides, recorded in the finding's history. It defaults to the git email of the current
directory (`git config user.email`), else the operating-system user.
"""

from __future__ import annotations

import getpass
import json
import subprocess
from contextlib import AbstractContextManager
from dataclasses import asdict

import typer
from rich.markup import escape
from rich.table import Table

from shared import names
from shared.cli.common import SEVERITY_STYLE, console, friendly_errors, utc_now
from shared.finding_facts import finding_facts, history_lines, principal_label
from shared.links import SIGN_IN_LOGS
from shared.store.model import Status, StoredFinding, Triage
from shared.store.tables import TableFindingStore
from shared.text import short_id, value_text

ID_HELP = "Finding id, or the first characters of one"
BY_HELP = "Who decides (default: your git email, else your OS user)"
COMMENT_HELP = "Why: kept in the finding's history"
CANDIDATES = 20  # an ambiguous prefix lists at most this many
LONG_ITEM = 60  # a list with an item longer than this shows one item a line


def register(findings_app: typer.Typer) -> None:
    findings_app.command("show")(show)
    findings_app.command("ack")(ack)
    findings_app.command("resolve")(resolve)
    findings_app.command("reopen")(reopen)
    findings_app.command("comment")(comment)


def default_analyst() -> str:
    """The git email of the current directory, else the OS user."""
    try:
        email = subprocess.run(["git", "config", "user.email"], capture_output=True, text=True, check=False,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        email = ""
    return email or getpass.getuser()


def find_one(store: TableFindingStore, prefix: str) -> StoredFinding:
    """The one finding whose id is or starts with `prefix`; the resolver's KeyError (listing the candidates when
    several match, saying so when none does) otherwise."""
    found = {finding.id: finding for finding in store.findings_by_prefix(prefix, limit=CANDIDATES)}
    candidates = [names.Named(finding.id, (finding.id,), f"{finding.id} {finding.detection_name} · "
                                                   f"{_principal(finding)}") for finding in found.values()]
    return found[names.resolve(prefix, candidates, "finding").id]


def show(finding_id: str = typer.Argument(..., help=ID_HELP),
         as_json: bool = typer.Option(False, "--json", help="Print the finding and its explanation as JSON")) -> None:
    """One finding explained: evidence, history, what to do, the query to paste in Log Analytics, links."""
    from shared.explain import explain

    with friendly_errors(), _local_store() as store:
        finding = find_one(store, finding_id)
    explanation = explain(finding)
    if as_json:
        console.print_json(json.dumps({**finding.model_dump(mode="json", by_alias=True),
                                       "explanation": asdict(explanation)}))
        return
    style = SEVERITY_STYLE[finding.severity]
    console.print(f"[{style}]{finding.severity}[/] [bold]{escape(finding.detection_name)}[/] · {finding.status}")
    console.print(escape(finding.summary))
    console.print(_facts(finding))
    console.print(_rows("Evidence", finding.evidence))
    if finding.history:
        console.print(_history(finding))
    console.print(f"\n[bold]What it means[/]\n{escape(explanation.description)}", soft_wrap=True)
    console.print(f"\n[bold]What to do[/]\n{escape(explanation.remediation or 'The rule gives no remediation.')}",
                  soft_wrap=True)
    if explanation.techniques:
        console.print("\n[bold]MITRE ATT&CK[/]")
        for link in explanation.techniques:
            console.print(f"  {link.title}  {link.url}", soft_wrap=True)
    if explanation.portal:
        console.print("\n[bold]Entra admin center[/]")
        app_id = (finding.context or {}).get("app_id")
        for link in explanation.portal:
            hint = f" (filter by application id {app_id})" if link == SIGN_IN_LOGS and app_id else ""
            console.print(f"  {escape(link.title)}{hint}: {link.url}", soft_wrap=True)
    if explanation.query:
        console.print("\n[bold]Query[/] (the finding's window filled in; paste it into Log Analytics)")
        console.print(explanation.query, markup=False, highlight=False, soft_wrap=True)


def ack(finding_id: str = typer.Argument(..., help=ID_HELP),
        comment_text: str = typer.Option(None, "--comment", "-m", help=COMMENT_HELP),
        by: str = typer.Option(None, "--by", help=BY_HELP)) -> None:
    """Acknowledge a finding: someone is looking at it."""
    _triage(finding_id, "acknowledged", comment_text, by)


def resolve(finding_id: str = typer.Argument(..., help=ID_HELP),
            false_positive: bool = typer.Option(False, "--false-positive",
                                                help="It was not what the rule looks for (status false_positive)"),
            comment_text: str = typer.Option(None, "--comment", "-m", help=COMMENT_HELP),
            by: str = typer.Option(None, "--by", help=BY_HELP)) -> None:
    """Resolve a finding (fixed or accepted), or mark it a false positive. It is new again if it fires again."""
    _triage(finding_id, "false_positive" if false_positive else "resolved", comment_text, by)


def reopen(finding_id: str = typer.Argument(..., help=ID_HELP),
           comment_text: str = typer.Option(None, "--comment", "-m", help=COMMENT_HELP),
           by: str = typer.Option(None, "--by", help=BY_HELP)) -> None:
    """Set a finding back to new."""
    _triage(finding_id, "new", comment_text, by)


def comment(finding_id: str = typer.Argument(..., help=ID_HELP),
            text: str = typer.Argument(..., help="The comment"),
            by: str = typer.Option(None, "--by", help=BY_HELP)) -> None:
    """Add a comment to a finding without changing its status."""
    _triage(finding_id, None, text, by)


def _triage(finding_id: str, status: Status | None, comment_text: str | None, by: str | None) -> None:
    with friendly_errors():
        change = Triage(by=by or default_analyst(), status=status, comment=comment_text or None)
        with _local_store() as store:
            finding = find_one(store, finding_id)
            updated = store.triage(finding.id, change, utc_now())
    what = f"{finding.status} → {updated.status}" if updated.status != finding.status else updated.status
    noted = " with a comment" if change.comment else ""
    console.print(f"{short_id(updated.id)} {escape(updated.detection_name)} · {escape(_principal(updated))}: "
                  f"{what}{noted}, by {escape(change.by)}")


def _local_store() -> AbstractContextManager[TableFindingStore]:
    from shared.audit.local import local_store  # looked up when called, so tests can hand in their store

    return local_store()


def _principal(finding: StoredFinding) -> str:
    return principal_label(finding)


def _facts(finding: StoredFinding) -> Table:
    table = Table(show_header=False, box=None, padding=(0, 2, 0, 0))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for name, value in finding_facts(finding).items():
        table.add_row(name, escape(value))
    return table


def _rows(title: str, values: dict) -> Table:
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("Field", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for name, value in values.items():
        table.add_row(escape(str(name)), escape(_value_lines(value)))
    return table


def _value_lines(value: object) -> str:
    """A list of long texts (control paths, say) one per line; anything else as value_text reads it."""
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value) \
            and max(map(len, value)) > LONG_ITEM:
        return "\n".join(value)
    return value_text(value)


def _history(finding: StoredFinding) -> Table:
    table = Table(title="History", title_justify="left", expand=True)
    for column in ("When", "Who", "Change", "Comment"):
        table.add_column(column, overflow="fold")
    for line in history_lines(finding):
        table.add_row(line.when, escape(line.who), line.change, escape(line.comment))
    return table
