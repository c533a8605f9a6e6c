"""The digest's words, shared by the Teams card and the email so both say the same thing.

Every piece of finding or directory text here is made safe with `safe_text` (attacker-controlled as
far as a renderer is concerned); the renderers escape it for their markup. Values become text through
shared/text.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from shared.links import Link, api_url, identity_links
from shared.notify.port import Digest
from shared.posture.hygiene import CredentialHygiene
from shared.posture.model import CredentialRecord
from shared.severity import SEVERITIES
from shared.store.model import StoredFinding
from shared.text import day, join_list, moment, plural, safe_text, short_id, utc

# Lengths of attacker-controlled or open-ended text in a rendering.
NAME_MAX = 120
DETECTION_MAX = 150
SUMMARY_MAX = 400
QUERY_MAX = 1000
CREDENTIAL_NAME_MAX = 80
KEY_ID_MAX = 40
SECTION_LINE_MAX = 300
HYGIENE_ITEMS = 5  # credentials listed per hygiene group at most
CREDENTIALS_PATH = "/api/credentials"
ACTIONABLE = ("High", "Medium")


def when_text(value: datetime) -> str:
    return f"{utc(value):%Y-%m-%d %H:%M}"


def window_text(finding: StoredFinding) -> str:
    """`2024-05-01 06:00 → 2024-05-02 06:00 UTC`, and how many windows it fired in when more than one."""
    text = f"{when_text(finding.window_start)} → {when_text(finding.window_end)} UTC"
    return text + (f" · seen in {plural(finding.occurrences, 'window')}" if finding.occurrences > 1 else "")


def digest_date(digest: Digest) -> str:
    return day(digest.generated_at)


def title(digest: Digest) -> str:
    return f"Workload identity audit — {digest_date(digest)}"


def run_text(digest: Digest) -> str:
    return f"Run {safe_text(digest.run_id, 80)} at {moment(digest.generated_at)}"


def principal_text(finding: StoredFinding) -> str:
    """The principal's display name, with its kind when the directory knows it. Without a name, its id: shortened
    when the finding links to the identity (the full id is one click away), whole otherwise."""
    linked = bool(identity_links(finding.context))
    name = safe_text(finding.principal_name or (short_id(finding.principal_id) if linked else finding.principal_id),
                     NAME_MAX)
    kind = (finding.context or {}).get("type")
    return f"{name} ({safe_text(kind, 40)})" if kind else name


def detection_text(finding: StoredFinding) -> str:
    return safe_text(finding.detection_name or finding.detection_id, DETECTION_MAX)


def summary_text(finding: StoredFinding) -> str:
    return safe_text(finding.summary, SUMMARY_MAX)


def headline(digest: Digest) -> str:
    """What changed since the last delivered digest, in one sentence."""
    changes = digest.changes
    listed = len(digest.findings) - len(digest.informational)
    if changes is None:
        return f"{plural(listed, 'finding')} to review."
    new_actionable = sum(changes.new.get(severity, 0) for severity in ACTIONABLE)
    new_other = sum(count for severity, count in changes.new.items()
                    if severity not in ACTIONABLE and severity != "Informational")
    parts = [f"{new_actionable:,} new High or Medium"]
    if new_other:
        parts.append(f"{new_other:,} new Low")
    if changes.since is None:
        return f"First digest: {join_list(parts)}."
    parts += [f"{changes.reopened:,} reopened", f"{changes.resolved:,} resolved", f"{changes.still_open:,} still open"]
    return f"Since the last digest ({moment(changes.since)}): {join_list(parts)}."


def informational_text(digest: Digest) -> str | None:
    """The routine findings collapsed into one line: `19 Informational, not listed: 12 Unused credential, ...`."""
    routine = digest.informational
    if not routine:
        return None
    by_detection = Counter(detection_text(finding) for finding in routine)
    groups = [f"{count:,} {name}" for name, count in sorted(by_detection.items(), key=lambda item: (-item[1], item[0]))]
    return f"{plural(len(routine), 'Informational finding')}, not listed: {join_list(groups)}."


def trend_rows(digest: Digest) -> list[tuple[str, dict[str, int]]]:
    """(run day and time, open findings per severity), oldest first, for the runs that counted them."""
    return [(when_text(point.at), {s: point.open.get(s, 0) for s in reversed(SEVERITIES)})
            for point in reversed(digest.trend)]


def findings_link(digest: Digest) -> Link | None:
    """All the digest's findings in the API, when PUBLIC_BASE_URL makes that an absolute URL."""
    url = api_url(digest.base_url, digest.findings_query)
    return Link("All findings", url) if url else None


def credentials_link(digest: Digest) -> Link | None:
    url = api_url(digest.base_url, CREDENTIALS_PATH)
    return Link("Credential inventory", url) if url else None


def findings_query_text(digest: Digest) -> str:
    return f"GET {safe_text(digest.findings_query, QUERY_MAX)}"


def section_line(text: str) -> str:
    return safe_text(text, SECTION_LINE_MAX)


def credential_text(record: CredentialRecord) -> str:
    """`secret "deploy key" (3f2a…-key-id)`: type, display name and key id, all made safe."""
    name = safe_text(record.display_name, CREDENTIAL_NAME_MAX)
    named = f' "{name}"' if name else ""
    return f"{record.type}{named} ({safe_text(record.key_id, KEY_ID_MAX)})"


def hygiene_identity(record: CredentialRecord) -> str:
    name = safe_text(record.principal_name or record.principal_id, NAME_MAX)
    return f"{name} (tier 0)" if record.privileged else name


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
    if group == "usage_unknown":
        return f"created {day(record.start)} · not seen in the logs read · ends {day(record.end)}"
    if record.end is None:
        return "no end date"
    lifetime = f"valid {plural(record.lifetime_days, 'day')}" if record.lifetime_days is not None else "valid"
    return f"{lifetime} · ends {day(record.end)}"


def hygiene_heading(hygiene: CredentialHygiene) -> str:
    return f"{plural(hygiene.credentials, 'credential')} in the inventory of {moment(hygiene.taken_at)}"
