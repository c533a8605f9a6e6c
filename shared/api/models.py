"""The HTTP API's request and response bodies (its OpenAPI schemas).

Declared here rather than reusing the store's models so that a change inside the store cannot
silently change the published contract. Every datetime the API returns is timezone-aware UTC;
a naive datetime coming out of the store is taken to be UTC.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.severity import Severity
from shared.store.model import COMMENT_MAX, Status, TriageStatus


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]


class FieldProblem(BaseModel):
    in_: Literal["query", "path", "body", "header"] = Field(alias="in")
    field: str | None = Field(description="The parameter or body field (dotted path); null for the input as a whole")
    detail: str


class Problem(BaseModel):
    """An error as an RFC 9457 problem document (application/problem+json)."""

    type: str = Field(description="`about:blank`: the status code says what kind of error it is")
    title: str = Field(description="The HTTP status phrase")
    status: int
    detail: str = Field(description="What was wrong, in words")
    errors: list[FieldProblem] | None = Field(None, description="422: each field that failed validation")


class Suppression(BaseModel):
    """The suppression file that matched a finding: why it is known-good, who says so, until when."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The suppression's id (its file name unless it sets one)")
    reason: str
    owner: str
    until: date = Field(description="It applies through this day (UTC)")


class TriageEvent(BaseModel):
    """One change to a finding's triage. `field` is `status` (from and to are statuses) or `comment` (a note
    without a status change). Changes made by the audit itself (a resolved finding firing again) are by `wiaudit`."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    at: UtcDatetime
    by: str
    field: Literal["status", "comment"]
    from_: str | None = Field(None, alias="from")
    to: str | None = None
    comment: str = ""


class Finding(BaseModel):
    """A detection that fired for one workload identity, with the analysts' triage."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="Stable fingerprint of detection and entities: a recurrence keeps the id")
    detection_id: str
    detection_name: str
    severity: Severity
    principal_id: str = Field(description="Object id, app id or name of the workload identity")
    principal_name: str = ""
    entities: dict[str, str] = Field(description="EntityType.Identifier -> value")
    window_start: UtcDatetime = Field(description="Start of the latest window it fired in")
    window_end: UtcDatetime
    first_seen: UtcDatetime | None = None
    last_seen: UtcDatetime | None = None
    summary: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict, description="The query's output row")
    context: dict[str, Any] | None = Field(None, description="Directory context of the principal")
    status: Status = "new"
    suppression: Suppression | None = Field(None, description="While suppressed: the suppression file that matched")
    comment: str = ""
    triaged_by: str | None = Field(None, description="Who triaged it last")
    triaged_at: UtcDatetime | None = Field(None, description="When it was triaged last")
    first_detected: UtcDatetime = Field(description="When an audit stored it first")
    last_detected: UtcDatetime = Field(description="When an audit stored it last; lists are newest first by this")
    occurrences: int = Field(1, description="Number of distinct windows it fired in")
    evidence_trimmed: bool = Field(False, description="Evidence or a text field was cut to fit the store")
    history: list[TriageEvent] = Field(default_factory=list, description="Every triage change, oldest first")


class Link(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    title: str
    url: str


class Explanation(BaseModel):
    """What the finding means and what to do, from its rule, with links to follow."""

    model_config = ConfigDict(from_attributes=True)

    description: str = Field(description="The rule's description")
    remediation: str | None = Field(description="What to do about it (the rule's remediation)")
    query: str | None = Field(description="The detection's KQL with the finding's window and parameters filled in, "
                                          "to paste into Log Analytics; null for a posture check")
    techniques: list[Link] = Field(description="MITRE ATT&CK techniques")
    portal: list[Link] = Field(description="The identity in the Entra admin center")


class FindingDetail(Finding):
    """One finding with its explanation."""

    explanation: Explanation


class FindingPage(BaseModel):
    items: list[Finding]
    continuation: str | None = Field(description="Pass as `continuation` for the next page; null on the last page")


class TriageRequest(BaseModel):
    """An analyst's change: a status, a comment or both; what is not sent is kept (a status change keeps the
    earlier comment). `by` names the analyst when the caller has no signed-in identity (an API key or a function
    key); with Entra sign-in (App Service authentication) the signed-in name is used."""

    model_config = ConfigDict(extra="forbid")

    status: TriageStatus | None = None
    comment: str | None = Field(None, min_length=1, max_length=COMMENT_MAX)
    by: str | None = Field(None, min_length=1, max_length=256,
                           description="Required unless the request carries a signed-in identity")

    @model_validator(mode="after")
    def _changes_something(self) -> TriageRequest:
        if self.status is None and self.comment is None:
            raise ValueError("send a status, a comment or both")
        return self


class Run(BaseModel):
    """One audit run."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    started: UtcDatetime
    ended: UtcDatetime | None = None
    status: Literal["running", "succeeded", "partial", "failed", "abandoned"]
    trigger: str
    counts: dict[str, dict[str, int]] = Field(description='detection_id -> {"findings": n, "new": n}')
    errors: dict[str, str] = Field(description="detection_id (or run, inventory, notify:<channel>) -> error")
    windows: dict[str, list[tuple[UtcDatetime, UtcDatetime]]] = Field(
        description="detection_id -> planned [start, end] windows")


class RunPage(BaseModel):
    items: list[Run]
    continuation: str | None = Field(description="Pass as `continuation` for the next page; null on the last page")


class DetectionParameter(BaseModel):
    type: Literal["timespan", "int", "real", "string", "dynamic"]
    default: Any
    description: str


class Detection(BaseModel):
    """A catalog detection (a Microsoft Sentinel scheduled analytic rule)."""

    id: str
    name: str
    kind: Literal["Scheduled", "Posture"] = Field(
        description="Scheduled: a KQL query over windows of the logs; Posture: a check of the directory inventory "
                    "that every audit runs")
    severity: Severity
    description: str
    tactics: list[str]
    techniques: list[str] = Field(description="MITRE ATT&CK technique ids")
    tables: list[str] = Field(description="Log Analytics tables it reads")
    frequency: str | None = Field(description="How often it runs (window length), e.g. 1d; null for posture checks")
    period: str | None = Field(description="How much log each run reads, e.g. 2d; null for posture checks")
    parameters: dict[str, DetectionParameter]


class DetectionPage(BaseModel):
    items: list[Detection]
    continuation: str | None = Field(description="Always null: the catalog is one page")


class Health(BaseModel):
    status: Literal["ok"] = "ok"
