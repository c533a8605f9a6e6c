"""What the FindingStore keeps: stored findings with their triage, audit runs, triage input."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.coverage import Coverage
from shared.findings import SuppressedBy
from shared.severity import Severity

TriageStatus = Literal["new", "acknowledged", "resolved", "false_positive"]  # what an analyst may set
Status = Literal[TriageStatus, "suppressed"]  # suppressed: only by a suppression file (shared/suppressions)
STATUSES: tuple[str, ...] = (*get_args(TriageStatus), "suppressed")
RunStatus = Literal["running", "succeeded", "partial", "failed", "abandoned"]
COMMENT_MAX = 4000


def check_status(status: str) -> Status:
    """The status itself, or ValueError naming the valid ones."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    return status  # type: ignore[return-value]


def check_triage_status(status: str) -> TriageStatus:
    """A status an analyst may set: `suppressed` comes only from a suppression file."""
    if check_status(status) not in get_args(TriageStatus):
        raise ValueError(f"status {status} is set only by a suppression file, not by triage "
                         "(see `wiaudit findings suppress`)")
    return status  # type: ignore[return-value]


class HistoryEntry(BaseModel):
    """One change to a finding's triage: who, when, which field from what to what, and why.

    `field` is "status" (from/to are statuses) or "comment" (a note without a status change; from/to empty).
    Changes the audit makes itself (a resolved finding firing again) are by "wiaudit".
    """

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    at: datetime
    by: str
    field: Literal["status", "comment"]
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    comment: str = ""


class StoredFinding(BaseModel):
    """A Finding as the store keeps it: the latest window's facts plus what the audit and the analysts added."""

    id: str
    detection_id: str
    detection_name: str
    severity: Severity
    principal_id: str
    principal_name: str = ""
    entities: dict[str, str]
    window_start: datetime = Field(description="Start of the latest window it fired in")
    window_end: datetime
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    summary: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict, description="JSON form of the query's output row")
    context: dict[str, Any] | None = None
    status: Status = "new"
    suppression: SuppressedBy | None = Field(None, description="The suppression that matched, while suppressed")
    comment: str = ""
    triaged_by: str | None = None
    triaged_at: datetime | None = None
    first_detected: datetime = Field(description="When an audit stored it first")
    last_detected: datetime = Field(description="When an audit stored it last (a new window)")
    occurrences: int = Field(1, description="Number of distinct windows it fired in")
    evidence_trimmed: bool = Field(False, description="Evidence, context or a text field was cut to fit the table")
    history: list[HistoryEntry] = Field(default_factory=list, description="Every triage change, oldest first")
    version: str | None = Field(None, exclude=True,
                                description="Opaque version of the stored row (changes on every write): the ETag")


class FindingChanged(Exception):
    """The finding is not at the version the caller expected (someone changed it since they read it)."""

    def __init__(self, current: StoredFinding) -> None:
        super().__init__(f"finding {current.id} was changed since it was read (now {current.status})")
        self.current = current


class Triage(BaseModel):
    """An analyst's change to a finding: only what is given changes (a status, a comment, or both)."""

    model_config = ConfigDict(frozen=True)

    by: str = Field(min_length=1, max_length=256)
    status: TriageStatus | None = None
    comment: str | None = Field(None, max_length=COMMENT_MAX)

    @field_validator("status", mode="before")
    @classmethod
    def _analyst_status(cls, value: str | None) -> str | None:
        return None if value is None else check_triage_status(value)

    @model_validator(mode="after")
    def _changes_something(self) -> Triage:
        if self.status is None and not self.comment:
            raise ValueError("a triage needs a status, a comment or both")
        return self


class RunRecord(BaseModel):
    """One audit run: what it planned, what each detection found, what failed."""

    id: str = Field(min_length=1, max_length=200)
    started: datetime
    ended: datetime | None = None
    status: RunStatus = "running"
    trigger: str = "timer"
    counts: dict[str, dict[str, int]] = Field(default_factory=dict,
                                              description='detection_id -> {"findings": n, "new": n}')
    errors: dict[str, str] = Field(default_factory=dict, description="detection_id -> error message")
    windows: dict[str, list[tuple[datetime, datetime]]] = Field(
        default_factory=dict, description="detection_id -> planned (start, end) windows")
    open_findings: dict[str, int] | None = Field(
        None, description="severity -> findings open (new or acknowledged) when the run stored its last")
    coverage: Coverage | None = Field(None, description="Rows per table in the audited range; rules not evaluated")


ID_CHARS = 16  # a digest baseline keeps finding ids this short (64 bits) so tens of thousands fit one entity


class FindingState(BaseModel):
    """A finding's status and severity, as the digests count them."""

    status: str
    severity: str


class DigestBaseline(BaseModel):
    """What a channel's last delivered digest saw: when, from which run, which findings were open."""

    at: datetime
    run_id: str
    open_ids: list[str] = Field(description=f"Open finding ids, first {ID_CHARS} characters")
    complete: bool = Field(True, description="False: too many open findings to keep their ids")


class PendingDelivery(BaseModel):
    """One digest on its way to a channel, recorded before it is sent (see outbox.py)."""

    id: str = Field(description="The digest's id: the run that sends it")
    state: Literal["sending", "delivered", "uncertain"] = "sending"
    attempted_at: datetime
    findings: int = Field(description="How many findings it carries")
    reason: str = Field("", description="Why its arrival is uncertain")
    reports: list[str] = Field(default_factory=list, description="Uncertain deliveries it tells its readers about")


@dataclass
class UpsertResult:
    """Finding ids by what the upsert did to them, and how many table transactions it took.

    `new` holds every finding that is new to the analysts: first stored, or `reopened` (a resolved or
    false-positive finding that fired again; those ids are in both lists).
    """

    new: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)  # first stored, already matched by a suppression
    reopened: list[str] = field(default_factory=list)
    recurring: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    conflicted: list[str] = field(default_factory=list)  # kept changing while being stored: not stored this time
    transactions: int = 0
