"""One row of WorkloadIdentityFindings_CL per change of a finding, with a stable id per change.

`ChangeId` is the same for the same change however often it is written or sent: a hash of the finding, the kind
of change and when (and by whom) it happened. A delivery repeated after an unconfirmed upload therefore shows as a
second row with the same ChangeId, which `summarize arg_max(TimeGenerated, *) by ChangeId` folds away.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the store imports this module
    from shared.store.model import StoredFinding

TABLE = "WorkloadIdentityFindings_CL"
STREAM = f"Custom-{TABLE}"
Change = Literal["new", "recurred", "updated", "triage"]


def change_id(finding_id: str, change: Change, at: datetime, by: str = "") -> str:
    text = "\n".join((finding_id, change, utc(at).isoformat(), by))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def change_record(finding: StoredFinding, change: Change, at: datetime, *, run_id: str = "", by: str = "",
                  comment: str = "") -> dict[str, Any]:
    """The table row for one change of `finding` (as stored after the change), made at `at`."""
    return {
        "TimeGenerated": _iso(at),
        "FindingId": finding.id,
        "DetectionId": finding.detection_id,
        "DetectionName": finding.detection_name,
        "Severity": finding.severity,
        "Status": finding.status,
        "PrincipalId": finding.principal_id,
        "PrincipalName": finding.principal_name,
        "WindowStart": _iso(finding.window_start),
        "WindowEnd": _iso(finding.window_end),
        "FirstSeen": _iso(finding.first_seen),
        "LastSeen": _iso(finding.last_seen),
        "Summary": finding.summary,
        "Entities": finding.entities,
        "Evidence": finding.evidence,
        "Change": change,
        "ChangedBy": by,
        "Comment": comment,
        "RunId": run_id,
        "ChangeId": change_id(finding.id, change, at, by),
    }


def utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else utc(moment).isoformat().replace("+00:00", "Z")
