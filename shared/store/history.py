"""Status transitions of a stored finding, each appended to its history.

Two ways a finding changes state: an analyst's triage (only the fields sent change; a status change keeps
the earlier comment) and the audit itself, recorded as by AUDIT_ACTOR: a resolved or false-positive finding
that fires again is new again, and a finding a live suppression matches is suppressed (new again when it
fires once no suppression matches it any more). Both are pure functions of the stored finding, so the table code
only reads, applies and writes conditionally.
"""

from __future__ import annotations

from datetime import datetime

from shared.findings import SuppressedBy
from shared.store.keys import utc
from shared.store.model import HistoryEntry, StoredFinding, Triage
from shared.text import moment

AUDIT_ACTOR = "wiaudit"
REOPENED_ON_RECURRENCE = ("resolved", "false_positive")


def apply_triage(finding: StoredFinding, change: Triage, at: datetime) -> StoredFinding | None:
    """The finding after the change, with one history entry; None when the change changes nothing."""
    status_changes = change.status is not None and change.status != finding.status
    if not status_changes and not change.comment:
        return None
    if status_changes:
        entry = HistoryEntry(at=utc(at), by=change.by, field="status", from_=finding.status, to=change.status,
                             comment=change.comment or "")
    else:
        entry = HistoryEntry(at=utc(at), by=change.by, field="comment", comment=change.comment or "")
    update = {"status": entry.to if status_changes else finding.status, "triaged_by": change.by,
              "triaged_at": utc(at), "history": [*finding.history, entry]}
    if change.comment:
        update["comment"] = change.comment
    if status_changes and finding.status == "suppressed":
        update["suppression"] = None  # an analyst took it over; the next run suppresses it again if still matched
    return finding.model_copy(update=update)


def reopen_on_recurrence(finding: StoredFinding, window_start: datetime, window_end: datetime,
                         at: datetime) -> StoredFinding | None:
    """The finding back to `new` when it was resolved or a false positive and fired again; else None."""
    if finding.status not in REOPENED_ON_RECURRENCE:
        return None
    entry = HistoryEntry(at=utc(at), by=AUDIT_ACTOR, field="status", from_=finding.status, to="new",
                         comment=f"fired again in the window {moment(window_start)} to {moment(window_end)}")
    return finding.model_copy(update={"status": "new", "history": [*finding.history, entry]})


def apply_suppression(finding: StoredFinding, suppression: SuppressedBy | None, at: datetime) -> StoredFinding | None:
    """The finding `suppressed` by the live suppression that matched it this run, or `new` again when it was
    suppressed and none matches any more (expired or removed); None when neither changes anything."""
    if suppression is not None:
        if finding.status == "suppressed":
            return finding.model_copy(update={"suppression": suppression}) if finding.suppression != suppression \
                else None
        entry = HistoryEntry(at=utc(at), by=AUDIT_ACTOR, field="status", from_=finding.status, to="suppressed",
                             comment=f"matched suppression {suppression.id} (owner {suppression.owner}, until "
                                     f"{suppression.until:%Y-%m-%d}): {suppression.reason}")
        return finding.model_copy(update={"status": "suppressed", "suppression": suppression,
                                          "history": [*finding.history, entry]})
    if finding.status != "suppressed":
        return None
    ended = finding.suppression
    why = f"suppression {ended.id} ended {ended.until:%Y-%m-%d} or was removed" if ended else "no suppression"
    entry = HistoryEntry(at=utc(at), by=AUDIT_ACTOR, field="status", from_="suppressed", to="new",
                         comment=f"fired again and no suppression matches it: {why}")
    return finding.model_copy(update={"status": "new", "suppression": None, "history": [*finding.history, entry]})
