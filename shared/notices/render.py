"""The owner notice email: one per owner, the credentials of their applications and what to do about each.

Application and credential names are whatever their creators typed: they go through `safe_text` and then
`html.escape` in the HTML part, as in the digest. The subject holds counts and dates only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from html import escape

from shared.notices.plan import EXPIRED, UNUSED, NoticeItem, OwnerNotice
from shared.notify.email import EmailContent
from shared.posture.hygiene import used_since
from shared.posture.model import CredentialRecord
from shared.store.keys import utc
from shared.text import day, join_list, moment, plural, safe_text, short_id

NAME_MAX = 120
PORTAL = "Entra admin center › Applications › App registrations › {app} › Certificates & secrets"
GRAPH_REMOVE = {"secret": "removePassword", "certificate": "removeKey"}


def _credential(record: CredentialRecord) -> str:
    name = safe_text(record.display_name, NAME_MAX)
    named = f' "{name}"' if name else ""
    return f"{record.type}{named} (key id {short_id(record.key_id)})"


def _where(record: CredentialRecord, app: str) -> str:
    if record.type == "federated":
        return f"{PORTAL.format(app=app)} › Federated credentials"
    if record.held_on == "servicePrincipal":  # the portal does not show these: only Graph does
        return (f"held on the service principal, not the app registration: remove it with Microsoft Graph "
                f"(servicePrincipal {GRAPH_REMOVE[record.type]}, key id {record.key_id})")
    return PORTAL.format(app=app)


def _better(record: CredentialRecord, app: str) -> str:
    if record.type == "secret":
        return (f"Better than a new secret: a certificate, or a federated credential (workload identity federation) "
                f"if {app} runs in Azure, GitHub Actions or Kubernetes, leaves no secret to leak or rotate.")
    if record.type == "certificate":
        return (f"A federated credential (workload identity federation) leaves nothing to rotate, if {app} runs "
                "in Azure, GitHub Actions or Kubernetes.")
    return ""


def advice(concerns: Sequence[str], record: CredentialRecord, now: datetime, unused_for: timedelta) -> str:
    """What is wrong with the credential and what to do, in a sentence or three."""
    app = safe_text(record.principal_name, NAME_MAX)
    ends = day(record.end) if record.end is not None else "no end date"
    if EXPIRED in concerns:
        return f"Expired on {ends} and still on {app}: remove it, so nobody mistakes it for the live one or revives it."
    last = f"last used {moment(record.last_used)}" if record.last_used else "no use found in the sign-in logs"
    idle = f"no sign-in used it in the last {plural(unused_for.days, 'day')} ({last})"
    if UNUSED in concerns and any(concern.startswith("expiring") for concern in concerns):
        return f"Ends on {ends} and {idle}: remove it rather than renew it."
    if UNUSED in concerns:
        return f"Valid until {ends}, but {idle}: remove it. An unused credential is only a way in for someone else."
    left = (utc(record.end).date() - utc(now).date()).days if record.end is not None else 0
    in_use = used_since(record, utc(now) - unused_for)
    if not in_use:
        return f"Ends on {ends}, in {plural(left, 'day')}: rotate it if {app} still needs it, or remove it."
    return (f"Ends on {ends}, in {plural(left, 'day')}, and {app} signs in with it ({last}): add a new "
            f"{record.type}, switch {app} over to it, then remove this one before {ends}, or sign-ins start to "
            f"fail. {_better(record, app)}").rstrip()


def _by_application(items: Sequence[NoticeItem]) -> list[tuple[str, list[tuple[CredentialRecord, list[str]]]]]:
    """(application name, [(credential, its concerns)]) in the items' order (most urgent first)."""
    applications: dict[str, tuple[str, dict[str, tuple[CredentialRecord, list[str]]]]] = {}
    for item in items:
        credentials = applications.setdefault(item.record.principal_id, (item.record.principal_name, {}))[1]
        credentials.setdefault(item.key, (item.record, []))[1].append(item.concern)
    return [(name, list(credentials.values())) for name, credentials in applications.values()]


def subject_of(notice: OwnerNotice) -> str:
    credentials = len({item.key for item in notice.items})
    ends = [utc(item.record.end) for item in notice.items if item.record.end is not None and item.concern != EXPIRED]
    subject = f"Action needed: {plural(credentials, 'credential')} of your applications"
    return f"{subject}, the first ending {day(min(ends))}" if ends else subject


def notice_email(notice: OwnerNotice, now: datetime, unused_for: timedelta, thresholds: Sequence[int]) -> EmailContent:
    """Subject, HTML and plain text of one owner's notice."""
    subject = subject_of(notice)
    grouped = _by_application(notice.items)
    intro = (f"You own {plural(len(grouped), 'application')} in Microsoft Entra ID whose credentials need action. "
             f"The workload identity audit of {moment(now)} found:")
    outro = (f"You get this once per credential, at {join_list(plural(days, 'day') for days in thresholds)} before its "
             "end, when it has expired and when it goes unused. Questions: your security team.")
    text = [subject, "", intro, ""]
    html = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(subject)}</title>'
            "</head>",
            '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#201f1e;'
            'max-width:640px;margin:0 auto;padding:8px;overflow-wrap:anywhere;word-wrap:break-word">',
            f'<h2 style="margin:0 0 8px 0">{escape(subject)}</h2>', f"<p>{escape(intro)}</p>"]
    for name, credentials in grouped:
        app = safe_text(name, NAME_MAX)
        text.append(app)
        html.append(f'<h3 style="margin:16px 0 4px 0">{escape(app)}</h3><ul style="margin:0;padding-left:20px">')
        for record, concerns in credentials:
            what, where = advice(concerns, record, now, unused_for), _where(record, app)
            text += [f"  - {_credential(record)}", f"    {what}", f"    Where: {where}"]
            html.append(f'<li style="margin:0 0 8px 0"><strong>{escape(_credential(record))}</strong><br>'
                        f'{escape(what)}<br><span style="color:#605e5c">Where: {escape(where)}</span></li>')
        text.append("")
        html.append("</ul>")
    text.append(outro)
    html += [f'<p style="color:#605e5c;margin-top:16px">{escape(outro)}</p>', "</body></html>"]
    return EmailContent(subject=subject, html="\n".join(html) + "\n", text="\n".join(text) + "\n")
