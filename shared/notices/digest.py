"""The security digest's fallback for owner notices: applications whose credentials need action but whose
owners no notice can reach (service principals or groups, no mailbox, outside the allowed domains)."""

from __future__ import annotations

from collections.abc import Sequence

from shared.notices.plan import Unnotified
from shared.notify.port import DigestSection
from shared.text import plural

TITLE = "No owner to notify"
LISTED = 10  # applications named at most; the rest are counted


def unowned_section(unowned: Sequence[Unnotified]) -> list[DigestSection]:
    """A short list for the digest; no section when every application has someone to tell."""
    if not unowned:
        return []
    lines = [f"{app.principal_name}: {plural(app.credentials, 'credential')} "
             f"{'needs' if app.credentials == 1 else 'need'} action, but {app.reason}" for app in unowned[:LISTED]]
    if len(unowned) > LISTED:
        lines.append(f"{plural(len(unowned) - LISTED, 'more application')} not listed; wiaudit notices --dry-run "
                     "lists them all.")
    return [DigestSection(title=TITLE, lines=lines, severity="Low")]
