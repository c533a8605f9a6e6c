"""A stored finding's facts and history as lines a person reads: one source for `wiaudit findings show` and the
web page (shared/web)."""

from __future__ import annotations

from dataclasses import dataclass

from shared.store.model import StoredFinding
from shared.text import moment, plural


@dataclass(frozen=True)
class HistoryLine:
    when: str
    who: str
    change: str
    comment: str


def principal_label(finding: StoredFinding) -> str:
    return finding.principal_name or finding.principal_id


def finding_facts(finding: StoredFinding) -> dict[str, str]:
    """Id, identity, status (who and when), latest window, how often it fired, when first and last stored."""
    facts = {
        "Id": finding.id,
        "Identity": f"{finding.principal_name} ({finding.principal_id})" if finding.principal_name else
        finding.principal_id,
        "Status": finding.status + (f", by {finding.triaged_by} at {moment(finding.triaged_at)}"
                                    if finding.triaged_by else ""),
        "Latest window": f"{moment(finding.window_start)} to {moment(finding.window_end)}",
        "Fired in": plural(finding.occurrences, "window"),
        "First detected": moment(finding.first_detected),
        "Last detected": moment(finding.last_detected),
    }
    if finding.comment:
        facts["Comment"] = finding.comment
    return facts


def history_lines(finding: StoredFinding) -> list[HistoryLine]:
    """Every triage change, oldest first: a status change reads `new → acknowledged`, a note `comment`."""
    return [HistoryLine(moment(entry.at), entry.by,
                        f"{entry.from_} → {entry.to}" if entry.field == "status" else "comment", entry.comment)
            for entry in finding.history]
