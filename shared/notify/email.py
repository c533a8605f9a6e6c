"""The digest as an email: a subject, an HTML body and a plain-text rendering of the same content.

The HTML is one column (at most 640 px wide, fluid below that) so it reads the same on a 375 px phone
and a 1000 px desktop: each finding is a block of lines, never a table row of five columns, and long
words (ids, URLs) may break. Links are plain anchors styled as buttons. Inline styles only (mail clients
drop <style> blocks); the only tables hold a few short numbers.

Every piece of finding text is attacker-controlled as far as this module is concerned (an app's display
name is whatever its creator typed): it goes through `safe_text` (see shared/notify/digest_text.py) and
then `html.escape`. Link URLs come from directory ids and the PUBLIC_BASE_URL setting, escaped as
attributes. The subject holds only counts and the date, never finding text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shared.links import SIGN_IN_LOGS, Link, finding_links
from shared.notify.digest_text import (
    HYGIENE_ITEMS,
    credential_text,
    credentials_link,
    detection_text,
    digest_date,
    findings_link,
    findings_query_text,
    headline,
    hygiene_detail,
    hygiene_heading,
    hygiene_identity,
    informational_text,
    principal_text,
    run_text,
    section_line,
    summary_text,
    title,
    trend_rows,
    window_text,
)
from shared.notify.port import Digest
from shared.posture.hygiene import CredentialHygiene, hygiene_counts
from shared.store.model import StoredFinding
from shared.text import plural

MAX_FINDINGS = 100  # an email can list more than a card; the rest is one findings_query away

SEVERITY_STYLE = {"High": "color:#a4262c;font-weight:bold", "Medium": "color:#8a5300;font-weight:bold",
                  "Low": "color:#005a9e;font-weight:bold", "Informational": "color:#605e5c"}
BODY = "margin:0;padding:0;background:#f3f2f1"
COLUMN = ("max-width:640px;margin:0 auto;padding:16px 12px;background:#ffffff;font-family:Segoe UI,Helvetica,"
          "Arial,sans-serif;font-size:14px;line-height:1.45;color:#201f1e;overflow-wrap:anywhere;word-wrap:break-word")
BLOCK = "border-top:1px solid #e1dfdd;padding:10px 0"
SUBTLE = "color:#605e5c"
CELL = "padding:3px 10px 3px 0;text-align:left;vertical-align:top"
BUTTON = ("display:inline-block;margin:6px 6px 0 0;padding:4px 10px;border:1px solid #8a8886;border-radius:4px;"
          "color:#0f6cbd;text-decoration:none;font-size:13px")


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str


def subject_of(digest: Digest) -> str:
    counts = ", ".join(f"{count:,} {severity}" for severity, count in digest.counts.items() if count)
    subject = f"Workload identity audit {digest_date(digest)}: {plural(len(digest.findings), 'finding')}"
    return f"{subject} ({counts})" if counts else subject


def _more(digest: Digest, shown: int) -> str | None:
    more = len(digest.findings) - len(digest.informational) - shown
    return f"{plural(more, 'more finding')} not listed here." if more > 0 else None


def _buttons(links: list[Link]) -> str:
    return "".join(f'<a href="{escape(link.url)}" style="{BUTTON}">{escape(link.title)}</a>' for link in links)


def _finding_html(finding: StoredFinding, base_url: str | None) -> str:
    e = escape
    parts = [f'<div style="{BLOCK}">',
             f'<div><span style="{SEVERITY_STYLE.get(finding.severity, "")}">{e(finding.severity)}</span> · '
             f"<strong>{e(detection_text(finding))}</strong></div>",
             f'<div><span style="{SUBTLE}">Principal:</span> {e(principal_text(finding))}</div>']
    if finding.summary:
        parts.append(f"<div>{e(summary_text(finding))}</div>")
    parts.append(f'<div style="{SUBTLE};font-size:12px">{e(window_text(finding))}</div>')
    links = [link for link in finding_links(finding, base_url) if link != SIGN_IN_LOGS]
    if links:
        parts.append(f"<div>{_buttons(links)}</div>")
    parts.append("</div>")
    return "".join(parts)


def _count_table(rows: list[tuple[str, str, str]]) -> str:
    """A small table of (label, style, value) rows."""
    cells = "".join(f'<tr><th style="{CELL};{style}">{escape(label)}</th><td style="{CELL}">{escape(value)}</td></tr>'
                    for label, style, value in rows)
    return f'<table role="presentation" style="border-collapse:collapse;margin:8px 0">{cells}</table>'


def _trend_html(digest: Digest) -> list[str]:
    rows = trend_rows(digest)
    if len(rows) < 2:
        return []
    severities = [severity for severity in rows[0][1] if severity != "Informational"]
    head = "".join(f'<th style="{CELL};{SEVERITY_STYLE[s]}">{escape(s)}</th>' for s in severities)
    body = "".join(f'<tr><td style="{CELL};white-space:nowrap">{escape(when)}</td>'
                   + "".join(f'<td style="{CELL}">{counts[s]:,}</td>' for s in severities) + "</tr>"
                   for when, counts in rows)
    return [f'<h3 style="margin:16px 0 4px 0;font-size:15px">Open findings, last {plural(len(rows), "run")}</h3>',
            f'<table role="presentation" style="border-collapse:collapse"><tr><th style="{CELL}">Run (UTC)</th>'
            f"{head}</tr>{body}</table>"]


def _hygiene_html(digest: Digest) -> list[str]:
    hygiene: CredentialHygiene | None = digest.hygiene
    if hygiene is None:
        return []
    e = escape
    parts = ['<h3 style="margin:24px 0 4px 0;font-size:15px">Credential hygiene</h3>',
             f'<div style="{SUBTLE}">{e(hygiene_heading(hygiene))}</div>',
             _count_table([(name, "", f"{count:,}") for name, count in hygiene_counts(hygiene)])]
    for key, group_title, group in hygiene.groups():
        shown = group.top[:HYGIENE_ITEMS]
        if not shown:
            continue
        parts.append(f'<div style="margin:12px 0 4px 0"><strong>{e(group_title)}</strong> '
                     f'<span style="{SUBTLE}">— {e(hygiene.describe(key))}</span></div>'
                     '<ul style="margin:0;padding-left:20px">')
        parts += [f"<li><strong>{e(hygiene_identity(record))}</strong> · {e(credential_text(record))} · "
                  f'<span style="{SUBTLE}">{e(hygiene_detail(key, record, hygiene))}</span></li>' for record in shown]
        if group.count > len(shown):
            parts.append(f'<li style="{SUBTLE}">{group.count - len(shown):,} more not listed.</li>')
        parts.append("</ul>")
    link = credentials_link(digest)
    if hygiene.total:
        parts.append(f"<div>{_buttons([link])}</div>" if link else
                     "<div>The whole inventory: <code>wiaudit credentials</code></div>")
    return parts


def _html(digest: Digest, subject: str, shown: list[StoredFinding]) -> str:
    e = escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(subject)}</title></head>",
        f'<body style="{BODY}"><div style="{COLUMN}">',
        f'<h2 style="margin:0 0 4px 0;font-size:20px">{e(title(digest))}</h2>',
        f'<p style="margin:0;font-weight:bold">{e(headline(digest))}</p>',
        f'<p style="margin:0 0 8px 0;{SUBTLE}">{e(run_text(digest))}</p>',
        _count_table([(severity, SEVERITY_STYLE.get(severity, ""), f"{count:,}")
                      for severity, count in digest.counts.items()]),
    ]
    parts += _trend_html(digest)
    if shown:
        parts.append('<h3 style="margin:16px 0 4px 0;font-size:15px">To review</h3>')
        parts += [_finding_html(finding, digest.base_url) for finding in shown]
    elif not digest.findings:
        parts.append("<p>No findings in this digest.</p>")
    more = _more(digest, len(shown))
    if more:
        parts.append(f'<p style="margin:12px 0 0 0"><strong>{e(more)}</strong></p>')
    routine = informational_text(digest)
    if routine:
        parts.append(f'<p style="margin:12px 0 0 0;{SUBTLE}">{e(routine)}</p>')
    link = findings_link(digest)
    if (more or routine) and link is None:
        parts.append(f"<p>Fetch them all: <code>{e(findings_query_text(digest))}</code></p>")
    if digest.findings:
        parts.append(f"<div>{_buttons(([link] if link else []) + [SIGN_IN_LOGS])}</div>")
    for section in digest.sections:
        parts.append(f'<h3 style="margin:24px 0 4px 0;font-size:15px;{SEVERITY_STYLE.get(section.severity or "", "")}">'
                     f"{e(section_line(section.title))}</h3>")
        parts += [f"<div>{e(section_line(line))}</div>" for line in section.lines]
    parts += _hygiene_html(digest)
    parts.append("</div></body></html>")
    return "\n".join(parts) + "\n"


def _hygiene_text(digest: Digest) -> list[str]:
    hygiene = digest.hygiene
    if hygiene is None:
        return []
    lines = ["", "Credential hygiene", hygiene_heading(hygiene), ""]
    counts = hygiene_counts(hygiene)
    width = max(len(name) for name, _ in counts)
    lines += [f"  {name:<{width}}  {count:,}" for name, count in counts]
    for key, group_title, group in hygiene.groups():
        shown = group.top[:HYGIENE_ITEMS]
        if not shown:
            continue
        lines += ["", f"{group_title} — {hygiene.describe(key)}"]
        lines += [f"  - {hygiene_identity(record)} · {credential_text(record)} · {hygiene_detail(key, record, hygiene)}"
                  for record in shown]
        if group.count > len(shown):
            lines.append(f"  {group.count - len(shown):,} more not listed.")
    link = credentials_link(digest)
    if hygiene.total:
        lines += ["", f"The whole inventory: {link.url if link else 'wiaudit credentials'}"]
    return lines


def _text(digest: Digest, shown: list[StoredFinding]) -> str:
    lines = [title(digest), headline(digest), run_text(digest), ""]
    width = max(len(severity) for severity in digest.counts)
    lines += [f"  {severity:<{width}}  {count:,}" for severity, count in digest.counts.items()]
    rows = trend_rows(digest)
    if len(rows) > 1:
        lines += ["", f"Open findings, last {plural(len(rows), 'run')}:"]
        lines += [f"  {when}  " + " · ".join(f"{s} {n:,}" for s, n in counts.items() if s != "Informational")
                  for when, counts in rows]
    lines.append("")
    if not digest.findings:
        lines.append("No findings in this digest.")
    for number, finding in enumerate(shown, 1):
        lines += [f"{number}. {finding.severity} · {detection_text(finding)}",
                  f"   Principal: {principal_text(finding)}"]
        if finding.summary:
            lines.append(f"   Why it matters: {summary_text(finding)}")
        lines.append(f"   Window: {window_text(finding)}")
        lines += [f"   {link.title}: {link.url}" for link in finding_links(finding, digest.base_url)
                  if link != SIGN_IN_LOGS]
        lines.append("")
    more = _more(digest, len(shown))
    if more:
        lines.append(more)
    routine = informational_text(digest)
    if routine:
        lines.append(routine)
    link = findings_link(digest)
    if more or routine:
        lines.append(f"Fetch them all: {link.url if link else findings_query_text(digest)}")
    for section in digest.sections:
        lines += ["", section_line(section.title)] + [f"  {section_line(line)}" for line in section.lines]
    lines += _hygiene_text(digest)
    return "\n".join(lines).rstrip("\n") + "\n"


def email_message(digest: Digest, *, max_findings: int = MAX_FINDINGS) -> EmailContent:
    """Subject, HTML and plain text of the digest email: the same content as the Teams card."""
    shown = digest.top(max_findings)
    subject = subject_of(digest)
    return EmailContent(subject=subject, html=_html(digest, subject, shown), text=_text(digest, shown))
