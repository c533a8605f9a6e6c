"""The digest as a Teams Workflows webhook message: an Adaptive Card 1.4 in the `message` envelope.

Office 365 connectors are retired; a Workflows webhook takes

    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                         "contentUrl": null, "content": <AdaptiveCard>}]}

and Teams rejects messages over ~28 KB, so `teams_message` drops findings from the list (and says how
many) until the compact UTF-8 JSON that `serialize` produces - the bytes TeamsNotifier posts - fits.

Findings carry attacker-controlled text (a display name is whatever the app's creator typed). Adaptive
Cards render markdown in TextBlocks and FactSets, so that text only ever goes into RichTextBlock
TextRuns, which the schema defines as plain text (markdown is not processed), after `safe_text`:
control characters removed, URL schemes defanged (`http[:]//`) so no client auto-links them, length
capped. Only findings data goes into the card: never a setting, token or the webhook URL.

A digest with `hygiene` gets a "Credential hygiene" section after the findings: counts per group and
each group's most urgent credentials (names and credential display names are attacker-controlled too:
TextRuns after `safe_text`). Under the size cap it shrinks before any finding is dropped: fewer
credentials per group, down to the counts alone, as long as at least one finding would not fit otherwise.

The digest's text helpers here (`window_text`, `credential_text`, `hygiene_detail`) are shared with the
email rendering; values become text through shared/text.py.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.notify.port import Digest
from shared.posture.hygiene import CredentialHygiene
from shared.posture.model import CredentialRecord
from shared.store.model import StoredFinding
from shared.text import day, plural, safe_text, utc

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28_000  # Teams: "about 28 KB" per message; stay under it in either reading of KB
MAX_FINDINGS = 20  # a card is a summary; the rest is one findings_query away

# Lengths of attacker-controlled or open-ended text in a rendering.
NAME_MAX = 120
DETECTION_MAX = 150
SUMMARY_MAX = 400
QUERY_MAX = 1000
CREDENTIAL_NAME_MAX = 80
KEY_ID_MAX = 40
HYGIENE_ITEMS = 5  # credentials listed per hygiene group at most
CREDENTIALS_QUERY = "GET /api/credentials"

SEVERITY_COLORS = {"High": "Attention", "Medium": "Warning", "Low": "Accent", "Informational": "Default"}

def when_text(value: datetime) -> str:
    return f"{utc(value):%Y-%m-%d %H:%M}"


def window_text(finding: StoredFinding) -> str:
    """`2024-05-01 06:00 → 2024-05-02 06:00 UTC`."""
    return f"{when_text(finding.window_start)} → {when_text(finding.window_end)} UTC"


def digest_date(digest: Digest) -> str:
    return f"{utc(digest.generated_at):%Y-%m-%d}"


def principal_text(finding: StoredFinding) -> str:
    """The principal's display name (or its id when it has none), with its kind when the directory knows it."""
    name = safe_text(finding.principal_name or finding.principal_id, NAME_MAX)
    kind = (finding.context or {}).get("type")
    return f"{name} ({safe_text(kind, 40)})" if kind else name


def credential_text(record: CredentialRecord) -> str:
    """`secret "deploy key" (3f2a…-key-id)`: type, display name and key id, all made safe."""
    name = safe_text(record.display_name, CREDENTIAL_NAME_MAX)
    named = f' "{name}"' if name else ""
    return f"{record.type}{named} ({safe_text(record.key_id, KEY_ID_MAX)})"


def hygiene_identity(record: CredentialRecord) -> str:
    name = safe_text(record.principal_name or record.principal_id, NAME_MAX)
    return f"{name} (privileged)" if record.privileged else name


def hygiene_detail(group: str, record: CredentialRecord, hygiene: CredentialHygiene) -> str:
    """The facts that put the credential in `group`: dates and days, no free text."""
    used = f"last used {day(record.last_used)}" if record.last_used or record.usage_known else "use unknown"
    if group == "expiring_in_use":
        days = (utc(record.end) - hygiene.taken_at).days if record.end else 0
        return f"ends {day(record.end)} (in {plural(days, 'day')}) · {used}"
    if group == "expired":
        return f"expired {day(record.end)} · {used}"
    if group == "unused":
        return used if record.last_used else f"never used in the logs read · ends {day(record.end)}"
    if record.end is None:
        return "no end date"
    lifetime = f"valid {plural(record.lifetime_days, 'day')}" if record.lifetime_days is not None else "valid"
    return f"{lifetime} · ends {day(record.end)}"


def hygiene_heading(hygiene: CredentialHygiene) -> str:
    return (f"{plural(hygiene.credentials, 'credential')} in the inventory of "
            f"{when_text(hygiene.taken_at)} UTC")


def serialize(message: dict[str, Any]) -> bytes:
    """The bytes TeamsNotifier posts (and the size limit is measured on): compact UTF-8 JSON."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **attributes}


def finding_block(finding: StoredFinding) -> dict[str, Any]:
    """One finding: severity and detection, principal, why it matters, window - all in plain-text TextRuns."""
    items = [
        _rich(_run(finding.severity, weight="Bolder", color=SEVERITY_COLORS.get(finding.severity, "Default")),
              _run(" · "),
              _run(safe_text(finding.detection_name or finding.detection_id, DETECTION_MAX), weight="Bolder")),
        _rich(_run("Principal: ", isSubtle=True), _run(principal_text(finding)), spacing="None"),
    ]
    if finding.summary:
        items.append(_rich(_run(safe_text(finding.summary, SUMMARY_MAX)), spacing="Small"))
    window = window_text(finding)
    if finding.occurrences > 1:
        window += f" · seen in {plural(finding.occurrences, 'window')}"
    items.append(_rich(_run(window, isSubtle=True, size="Small"), spacing="Small"))
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _header(digest: Digest) -> list[dict[str, Any]]:
    total = len(digest.findings)
    counts = digest.counts
    return [
        {"type": "TextBlock", "text": f"Workload identity audit — {digest_date(digest)}", "size": "Large",
         "weight": "Bolder", "wrap": True},
        _rich(_run(f"{plural(total, 'finding')} to review · run {safe_text(digest.run_id, 80)}", isSubtle=True),
              spacing="None"),
        {"type": "FactSet",
         "facts": [{"title": severity, "value": f"{count:,}"} for severity, count in counts.items()]},
    ]


def _footer(digest: Digest, shown: int, dropped_for_size: int) -> list[dict[str, Any]]:
    total = len(digest.findings)
    more = total - shown
    if total == 0:
        return [{"type": "TextBlock", "text": "No findings in this digest.", "wrap": True}]
    if more <= 0:
        return []
    sentence = f"{plural(more, 'more finding')} not listed here"
    if dropped_for_size:
        sentence += f" ({dropped_for_size:,} left out to keep this message under the Teams size limit)"
    return [
        _rich(_run(sentence + ".", weight="Bolder"), separator=True, spacing="Medium"),
        _rich(_run("Fetch them all: ", isSubtle=True),
              _run(safe_text(digest.findings_query, QUERY_MAX), fontType="Monospace"), spacing="Small"),
    ]


def hygiene_blocks(hygiene: CredentialHygiene | None, per_group: int = HYGIENE_ITEMS) -> list[dict[str, Any]]:
    """The "Credential hygiene" section: counts per group, then up to `per_group` credentials of each."""
    if hygiene is None:
        return []
    items: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "Credential hygiene", "size": "Medium", "weight": "Bolder", "wrap": True},
        _rich(_run(hygiene_heading(hygiene), isSubtle=True), spacing="None"),
        {"type": "FactSet", "facts": [{"title": title, "value": f"{group.count:,}"}
                                      for _, title, group in hygiene.groups()]},
    ]
    for key, title, group in hygiene.groups():
        shown = group.top[:per_group]
        if not shown:
            continue
        items.append(_rich(_run(title, weight="Bolder"), _run(f" — {hygiene.describe(key)}", isSubtle=True),
                           spacing="Medium"))
        for record in shown:
            items.append(_rich(_run(hygiene_identity(record), weight="Bolder"), _run(" · "),
                               _run(credential_text(record)), _run(" · "),
                               _run(hygiene_detail(key, record, hygiene), isSubtle=True), spacing="None"))
        if group.count > len(shown):
            items.append(_rich(_run(f"{group.count - len(shown):,} more not listed.", isSubtle=True,
                                    size="Small"), spacing="None"))
    if hygiene.total:
        items.append(_rich(_run("The whole inventory: ", isSubtle=True),
                           _run(CREDENTIALS_QUERY, fontType="Monospace"), spacing="Small"))
    return [{"type": "Container", "separator": True, "spacing": "ExtraLarge", "items": items}]


def _envelope(body: list[dict[str, Any]]) -> dict[str, Any]:
    card = {"$schema": SCHEMA, "type": "AdaptiveCard", "version": CARD_VERSION, "msteams": {"width": "Full"},
            "body": body}
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


def teams_message(digest: Digest, *, max_findings: int = MAX_FINDINGS,
                  max_bytes: int = MAX_MESSAGE_BYTES) -> dict[str, Any]:
    """The Workflows webhook message for `digest`, at most `max_findings` listed, `serialize`d under `max_bytes`."""
    top = digest.top(max_findings)
    blocks = [finding_block(finding) for finding in top]
    header = _header(digest)
    first = len(serialize(blocks[0])) + 1 if blocks else 0

    # The hygiene section gives way first: the most credentials per group that still leave room for a finding.
    for per_group in dict.fromkeys((HYGIENE_ITEMS, 3, 1, 0)):
        hygiene = hygiene_blocks(digest.hygiene, per_group)
        # Add findings while the card fits, counting each block's serialized size (plus its comma) instead of
        # re-serializing the whole card per finding; the footer is measured at its longest (all dropped for size).
        base = len(serialize(_envelope(header + _footer(digest, 0, len(digest.findings)) + hygiene)))
        if base + first <= max_bytes:
            break
    size, fitting = base, 0
    for block in blocks:
        size += len(serialize(block)) + 1
        if size > max_bytes:
            break
        fitting += 1
    while True:
        message = _envelope(header + blocks[:fitting] + _footer(digest, fitting, len(top) - fitting) + hygiene)
        if len(serialize(message)) <= max_bytes or fitting == 0:
            return message
        fitting -= 1
