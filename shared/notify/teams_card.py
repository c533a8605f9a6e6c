"""The digest as a Teams Workflows webhook message: an Adaptive Card 1.4 in the `message` envelope.

Office 365 connectors are retired; a Workflows webhook takes

    {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                         "contentUrl": null, "content": <AdaptiveCard>}]}

and Teams rejects messages over ~28 KB, so `teams_message` drops findings from the list (and says how
many) until the compact UTF-8 JSON that `serialize` produces - the bytes TeamsNotifier posts - fits.

Reading order: title, the headline (what changed since the last delivered digest), the 7-run trend,
the High/Medium/Low findings each with `Action.OpenUrl` buttons (the finding in the API when
PUBLIC_BASE_URL is set, the identity in the Entra admin center), the Informational findings collapsed
into one line, the digest's extra sections (`Digest.sections`), then the credential hygiene section.

Findings carry attacker-controlled text (a display name is whatever the app's creator typed). Adaptive
Cards render markdown in TextBlocks and FactSets, so that text only ever goes into RichTextBlock
TextRuns, which the schema defines as plain text (markdown is not processed), after `safe_text`.
Button URLs are built from directory ids (URL-quoted) and the PUBLIC_BASE_URL setting, never from
finding text. Only findings data goes into the card: never a secret or the webhook URL.

Under the size cap the hygiene section shrinks before any finding is dropped: fewer credentials per
group, down to the counts alone, as long as at least one finding would not fit otherwise.
"""

from __future__ import annotations

import json
from typing import Any

from shared.links import SIGN_IN_LOGS, Link, finding_links
from shared.notify.digest_text import (
    HYGIENE_ITEMS,
    credential_text,
    credentials_link,
    detection_text,
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
from shared.notify.port import Digest, DigestSection
from shared.posture.hygiene import CredentialHygiene, hygiene_counts
from shared.store.model import StoredFinding
from shared.text import plural

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
MAX_MESSAGE_BYTES = 28_000  # Teams: "about 28 KB" per message; stay under it in either reading of KB
MAX_FINDINGS = 20  # a card is a summary; the rest is one findings_query away

SEVERITY_COLORS = {"High": "Attention", "Medium": "Warning", "Low": "Accent", "Informational": "Default"}


def serialize(message: dict[str, Any]) -> bytes:
    """The bytes TeamsNotifier posts (and the size limit is measured on): compact UTF-8 JSON."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": text, **style}


def _rich(*runs: dict[str, Any], **attributes: Any) -> dict[str, Any]:
    return {"type": "RichTextBlock", "inlines": list(runs), **attributes}


def _actions(links: list[Link], **attributes: Any) -> list[dict[str, Any]]:
    if not links:
        return []
    return [{"type": "ActionSet", **attributes,
             "actions": [{"type": "Action.OpenUrl", "title": link.title, "url": link.url} for link in links]}]


def finding_block(finding: StoredFinding, base_url: str | None = None) -> dict[str, Any]:
    """One finding: severity and detection, principal, why it matters, window, then its buttons."""
    items = [
        _rich(_run(finding.severity, weight="Bolder", color=SEVERITY_COLORS.get(finding.severity, "Default")),
              _run(" · "), _run(detection_text(finding), weight="Bolder")),
        _rich(_run("Principal: ", isSubtle=True), _run(principal_text(finding)), spacing="None"),
    ]
    if finding.summary:
        items.append(_rich(_run(summary_text(finding)), spacing="Small"))
    items.append(_rich(_run(window_text(finding), isSubtle=True, size="Small"), spacing="Small"))
    items += _actions([link for link in finding_links(finding, base_url) if link != SIGN_IN_LOGS], spacing="Small")
    return {"type": "Container", "separator": True, "spacing": "Medium", "items": items}


def _header(digest: Digest) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": title(digest), "size": "Large", "weight": "Bolder", "wrap": True},
        _rich(_run(headline(digest), weight="Bolder"), spacing="Small"),
        _rich(_run(run_text(digest), isSubtle=True), spacing="None"),
        {"type": "FactSet", "facts": [{"title": severity, "value": f"{count:,}"}
                                      for severity, count in digest.counts.items()]},
    ]
    rows = trend_rows(digest)
    if len(rows) > 1:
        blocks.append(_rich(_run(f"Open findings, last {plural(len(rows), 'run')}", weight="Bolder"),
                            spacing="Medium"))
        blocks.append({"type": "FactSet", "spacing": "Small", "facts": [
            {"title": when, "value": " · ".join(f"{severity} {count:,}" for severity, count in counts.items()
                                                if severity != "Informational")}
            for when, counts in rows]})
    return blocks


def _footer(digest: Digest, shown: int, dropped_for_size: int) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    listed = len(digest.findings) - len(digest.informational)
    if not digest.findings:
        blocks.append({"type": "TextBlock", "text": "No findings in this digest.", "wrap": True})
    more = listed - shown
    if more > 0:
        sentence = f"{plural(more, 'more finding')} not listed here"
        if dropped_for_size:
            sentence += f" ({dropped_for_size:,} left out to keep this message under the Teams size limit)"
        blocks.append(_rich(_run(sentence + ".", weight="Bolder"), separator=True, spacing="Medium"))
    routine = informational_text(digest)
    if routine:
        blocks.append(_rich(_run(routine, isSubtle=True), separator=not more > 0, spacing="Medium"))
    link = findings_link(digest)
    if (more > 0 or routine) and link is None:
        blocks.append(_rich(_run("Fetch them all: ", isSubtle=True),
                            _run(findings_query_text(digest), fontType="Monospace"), spacing="Small"))
    if digest.findings:
        blocks += _actions(([link] if link else []) + [SIGN_IN_LOGS], spacing="Small")
    return blocks


def section_blocks(sections: list[DigestSection]) -> list[dict[str, Any]]:
    """Extra sections (suppressions, coverage...): a title and plain-text lines each."""
    blocks = []
    for section in sections:
        color = SEVERITY_COLORS.get(section.severity or "", "Default")
        items = [_rich(_run(section_line(section.title), weight="Bolder", color=color))]
        items += [_rich(_run(section_line(line)), spacing="None") for line in section.lines]
        blocks.append({"type": "Container", "separator": True, "spacing": "Large", "items": items})
    return blocks


def hygiene_blocks(digest: Digest, per_group: int = HYGIENE_ITEMS) -> list[dict[str, Any]]:
    """The "Credential hygiene" section: counts per group, then up to `per_group` credentials of each."""
    hygiene: CredentialHygiene | None = digest.hygiene
    if hygiene is None:
        return []
    items: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": "Credential hygiene", "size": "Medium", "weight": "Bolder", "wrap": True},
        _rich(_run(hygiene_heading(hygiene), isSubtle=True), spacing="None"),
        {"type": "FactSet", "facts": [{"title": name, "value": f"{count:,}"}
                                      for name, count in hygiene_counts(hygiene)]},
    ]
    for key, group_title, group in hygiene.groups():
        shown = group.top[:per_group]
        if not shown:
            continue
        items.append(_rich(_run(group_title, weight="Bolder"), _run(f" — {hygiene.describe(key)}", isSubtle=True),
                           spacing="Medium"))
        for record in shown:
            items.append(_rich(_run(hygiene_identity(record), weight="Bolder"), _run(" · "),
                               _run(credential_text(record)), _run(" · "),
                               _run(hygiene_detail(key, record, hygiene), isSubtle=True), spacing="None"))
        if group.count > len(shown):
            items.append(_rich(_run(f"{group.count - len(shown):,} more not listed.", isSubtle=True,
                                    size="Small"), spacing="None"))
    link = credentials_link(digest)
    if hygiene.total and link:
        items += _actions([link], spacing="Small")
    elif hygiene.total:
        items.append(_rich(_run("The whole inventory: ", isSubtle=True),
                           _run("wiaudit credentials", fontType="Monospace"), spacing="Small"))
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
    blocks = [finding_block(finding, digest.base_url) for finding in top]
    header = _header(digest)
    sections = section_blocks(digest.sections)
    first = len(serialize(blocks[0])) + 1 if blocks else 0

    # The hygiene section gives way first: the most credentials per group that still leave room for a finding.
    for per_group in dict.fromkeys((HYGIENE_ITEMS, 3, 1, 0)):
        hygiene = hygiene_blocks(digest, per_group)
        # Add findings while the card fits, counting each block's serialized size (plus its comma) instead of
        # re-serializing the whole card per finding; the footer is measured at its longest (all dropped for size).
        base = len(serialize(_envelope(header + _footer(digest, 0, len(digest.findings)) + sections + hygiene)))
        if base + first <= max_bytes:
            break
    size, fitting = base, 0
    for block in blocks:
        size += len(serialize(block)) + 1
        if size > max_bytes:
            break
        fitting += 1
    while True:
        message = _envelope(header + blocks[:fitting] + _footer(digest, fitting, len(top) - fitting) + sections
                            + hygiene)
        if len(serialize(message)) <= max_bytes or fitting == 0:
            return message
        fitting -= 1
