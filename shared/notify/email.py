"""The digest as an email: a subject, an HTML body (one table) and a plain-text rendering of the same content.

Every piece of finding text is attacker-controlled as far as this module is concerned (an app's display
name is whatever its creator typed): it goes through `safe_text` (one line, no control or bidi
characters, URL schemes defanged, capped) and then `html.escape` in the HTML part. The subject holds
only counts and the date, never finding text.

A digest with `hygiene` gets a "Credential hygiene" section after the findings (counts per group and each
group's most urgent credentials), escaped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from shared.notify.port import Digest
from shared.notify.teams_card import (
    CREDENTIALS_QUERY,
    DETECTION_MAX,
    HYGIENE_ITEMS,
    QUERY_MAX,
    SUMMARY_MAX,
    credential_text,
    digest_date,
    hygiene_detail,
    hygiene_heading,
    hygiene_identity,
    principal_text,
    window_text,
)
from shared.posture.hygiene import CredentialHygiene
from shared.store.model import StoredFinding
from shared.text import plural, safe_text

MAX_FINDINGS = 100  # an email can list more than a card; the rest is one findings_query away

SEVERITY_STYLE = {"High": "color:#a4262c;font-weight:bold", "Medium": "color:#8a5300;font-weight:bold",
                  "Low": "color:#005a9e", "Informational": "color:#605e5c"}
CELL = "padding:6px 8px;border-bottom:1px solid #e1dfdd;vertical-align:top;text-align:left"


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class _Row:
    severity: str
    detection: str
    principal: str
    summary: str
    window: str


def _row(finding: StoredFinding) -> _Row:
    window = window_text(finding)
    if finding.occurrences > 1:
        window += f" (seen in {plural(finding.occurrences, 'window')})"
    return _Row(finding.severity, safe_text(finding.detection_name or finding.detection_id, DETECTION_MAX),
                principal_text(finding), safe_text(finding.summary, SUMMARY_MAX), window)


def subject_of(digest: Digest) -> str:
    counts = ", ".join(f"{count:,} {severity}" for severity, count in digest.counts.items() if count)
    subject = f"Workload identity audit {digest_date(digest)}: {plural(len(digest.findings), 'finding')}"
    return f"{subject} ({counts})" if counts else subject


def _more_sentence(digest: Digest, shown: int) -> str | None:
    more = len(digest.findings) - shown
    return f"{plural(more, 'more finding')} not listed here." if more > 0 else None


def _hygiene_html(hygiene: CredentialHygiene | None) -> list[str]:
    if hygiene is None:
        return []
    e = escape
    parts = ['<h3 style="margin:24px 0 4px 0">Credential hygiene</h3>',
             f'<p style="margin:0 0 8px 0;color:#605e5c">{e(hygiene_heading(hygiene))}</p>',
             '<table role="presentation" style="border-collapse:collapse;margin-bottom:12px">']
    parts += [f'<tr><th style="{CELL}">{e(title)}</th><td style="{CELL}">{group.count:,}</td></tr>'
              for _, title, group in hygiene.groups()]
    parts.append("</table>")
    for key, title, group in hygiene.groups():
        shown = group.top[:HYGIENE_ITEMS]
        if not shown:
            continue
        parts.append(f'<p style="margin:12px 0 4px 0"><strong>{e(title)}</strong> '
                     f'<span style="color:#605e5c">— {e(hygiene.describe(key))}</span></p><ul style="margin:0">')
        parts += [f"<li><strong>{e(hygiene_identity(record))}</strong> · {e(credential_text(record))} · "
                  f'<span style="color:#605e5c">{e(hygiene_detail(key, record, hygiene))}</span></li>'
                  for record in shown]
        if group.count > len(shown):
            parts.append(f'<li style="color:#605e5c">{group.count - len(shown):,} more not listed.</li>')
        parts.append("</ul>")
    if hygiene.total:
        parts.append(f"<p>The whole inventory: <code>{e(CREDENTIALS_QUERY)}</code></p>")
    return parts


def _hygiene_text(hygiene: CredentialHygiene | None) -> list[str]:
    if hygiene is None:
        return []
    lines = ["", "Credential hygiene", hygiene_heading(hygiene), ""]
    width = max(len(title) for _, title, _ in hygiene.groups())
    lines += [f"  {title:<{width}}  {group.count:,}" for _, title, group in hygiene.groups()]
    for key, title, group in hygiene.groups():
        shown = group.top[:HYGIENE_ITEMS]
        if not shown:
            continue
        lines += ["", f"{title} — {hygiene.describe(key)}"]
        lines += [f"  - {hygiene_identity(record)} · {credential_text(record)} · {hygiene_detail(key, record, hygiene)}"
                  for record in shown]
        if group.count > len(shown):
            lines.append(f"  {group.count - len(shown):,} more not listed.")
    if hygiene.total:
        lines += ["", f"The whole inventory: {CREDENTIALS_QUERY}"]
    return lines


def _html(digest: Digest, subject: str, rows: list[_Row]) -> str:
    e = escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(subject)}</title></head>",
        '<body style="font-family:Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#201f1e">',
        f'<h2 style="margin:0 0 4px 0">Workload identity audit — {e(digest_date(digest))}</h2>',
        f'<p style="margin:0 0 12px 0;color:#605e5c">{e(plural(len(digest.findings), "finding"))} to review'
        f" · run {e(safe_text(digest.run_id, 80))}</p>",
        '<table role="presentation" style="border-collapse:collapse;margin-bottom:16px">',
    ]
    for severity, count in digest.counts.items():
        parts.append(f'<tr><th style="{CELL};{SEVERITY_STYLE.get(severity, "")}">{e(severity)}</th>'
                     f'<td style="{CELL}">{count:,}</td></tr>')
    parts.append("</table>")
    if rows:
        parts.append('<table style="border-collapse:collapse;width:100%">')
        parts.append("<thead><tr>" + "".join(f'<th style="{CELL}">{e(title)}</th>' for title in
                                             ("Severity", "Detection", "Principal", "Why it matters", "Window"))
                     + "</tr></thead><tbody>")
        for row in rows:
            parts.append(
                "<tr>"
                f'<td style="{CELL};{SEVERITY_STYLE.get(row.severity, "")}">{e(row.severity)}</td>'
                f'<td style="{CELL}">{e(row.detection)}</td>'
                f'<td style="{CELL}">{e(row.principal)}</td>'
                f'<td style="{CELL}">{e(row.summary)}</td>'
                f'<td style="{CELL};white-space:nowrap">{e(row.window)}</td>'
                "</tr>")
        parts.append("</tbody></table>")
    else:
        parts.append("<p>No findings in this digest.</p>")
    more = _more_sentence(digest, len(rows))
    if more:
        parts.append(f'<p style="margin-top:16px"><strong>{e(more)}</strong><br>Fetch them all: '
                     f"<code>{e(safe_text(digest.findings_query, QUERY_MAX))}</code></p>")
    parts += _hygiene_html(digest.hygiene)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _text(digest: Digest, rows: list[_Row]) -> str:
    lines = [f"Workload identity audit — {digest_date(digest)}",
             f"{plural(len(digest.findings), 'finding')} to review · run {safe_text(digest.run_id, 80)}", ""]
    width = max(len(severity) for severity in digest.counts)
    lines += [f"  {severity:<{width}}  {count:,}" for severity, count in digest.counts.items()]
    lines.append("")
    if not rows:
        lines.append("No findings in this digest.")
    for number, row in enumerate(rows, 1):
        lines += [f"{number}. [{row.severity}] {row.detection}",
                  f"   Principal: {row.principal}"]
        if row.summary:
            lines.append(f"   Why it matters: {row.summary}")
        lines += [f"   Window: {row.window}", ""]
    more = _more_sentence(digest, len(rows))
    if more:
        lines += [more, f"Fetch them all: {safe_text(digest.findings_query, QUERY_MAX)}"]
    lines += _hygiene_text(digest.hygiene)
    return "\n".join(lines).rstrip("\n") + "\n"


def email_message(digest: Digest, *, max_findings: int = MAX_FINDINGS) -> EmailContent:
    """Subject, HTML and plain text of the digest email: the same content as the Teams card."""
    rows = [_row(finding) for finding in digest.top(max_findings)]
    subject = subject_of(digest)
    return EmailContent(subject=subject, html=_html(digest, subject, rows), text=_text(digest, rows))
