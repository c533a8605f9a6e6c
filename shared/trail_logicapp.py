"""Logic App workflow runs in a service principal's trail.

A Logic App's API connection signs in as a service principal, but neither log names the other: the sign-in
names only the resource (Log Analytics API, Microsoft Graph...), the workflow's WorkflowRuntime diagnostics
carry no identity and no IP. So a run or action that started close to a sign-in of the principal to a resource
connectors call is a PROBABLE link, said with its reason. The link is certain only when the workflow's API
connection is known to sign in as the principal: from the activity log (a connection written with the
principal's client id, used by a workflow written with that connection) or from the LOGIC_APP_CONNECTIONS
setting.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.catalog.render import kql_datetime
from shared.logsource.base import LogSource
from shared.text import duration, moment
from shared.trail import TrailEvent

# Resources Logic App connectors sign in to with a service principal: resource app id -> display name.
CONNECTOR_RESOURCES: dict[str, str] = {
    "ca7f3f0b-7d91-482c-8e09-c5d840d0eac5": "Log Analytics API",
    "797f4846-ba00-4fd7-ba43-dac1f8f63013": "Windows Azure Service Management API",
    "00000003-0000-0000-c000-000000000000": "Microsoft Graph",
    "cfa8b339-82a2-471a-a3c9-0fc0be7a4093": "Azure Key Vault",
    "00000002-0000-0ff1-ce00-000000000000": "Office 365 Exchange Online",
    "00000003-0000-0ff1-ce00-000000000000": "Office 365 SharePoint Online",
    "e406a681-f3d4-42a8-90b6-c2b029497af1": "Azure Storage",
    "80369ed6-5f11-4dd9-bef3-692475845e77": "Microsoft.ServiceBus",
    "022907d3-0f1b-48f7-badc-1ba6abab6d66": "Azure SQL Database",
    "2746ea77-4702-4b45-80ca-3c97e680e8b7": "Azure Data Explorer",
    "8ee8fdad-f234-4243-8f3b-15c294843740": "Microsoft Threat Protection",
    "fc780465-2017-40d4-a0c5-307022471b92": "WindowsDefenderATP",
    "00000007-0000-0000-c000-000000000000": "Dynamics CRM",
    "00000009-0000-0000-c000-000000000000": "Power BI Service",
}
_CONNECTOR_NAMES = {name.lower() for name in CONNECTOR_RESOURCES.values()} | {"azure resource manager"}
CONNECTION_LOOKBACK = timedelta(days=90)  # the activity log's retention in a workspace by default
RUN_SLACK = timedelta(days=1)  # a run's completion record is written when it ends, after its start

SIGN_INS = """union AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
| where ServicePrincipalId in~ (Principals) or AppId in~ (Principals)
| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd
| project TimeGenerated, ServicePrincipalId, AppId, ResourceIdentity, ResourceDisplayName, ResultType"""
WORKFLOW_STEPS = """AzureDiagnostics
| where Category == "WorkflowRuntime"
| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd + RunSlack
| where OperationName in~ ("Microsoft.Logic/workflows/workflowRunStarted",
    "Microsoft.Logic/workflows/workflowRunCompleted", "Microsoft.Logic/workflows/workflowActionStarted",
    "Microsoft.Logic/workflows/workflowActionCompleted")
| where startTime_t >= WindowStart and startTime_t < WindowEnd
| project TimeGenerated, OperationName, Workflow = resource_workflowName_s,
    WorkflowId = tolower(iff(isnotempty(workflowId_s), workflowId_s, ResourceId)), RunId = resource_runId_s,
    ActionName = resource_actionName_s, Status = status_s, StartTime = startTime_t"""
RESOURCE_WRITES = """AzureActivity
| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd
| where OperationNameValue in~ ("Microsoft.Web/connections/write", "Microsoft.Logic/workflows/write")
| project TimeGenerated, CorrelationId, Status = ActivityStatusValue, Operation = tolower(OperationNameValue),
    ResourceId = tolower(_ResourceId), Properties_d"""


@dataclass(frozen=True)
class SignIn:
    time: datetime
    resource: str  # display name
    failed: bool


@dataclass(frozen=True)
class WorkflowStep:
    """A run of a workflow, or one action in it, as the WorkflowRuntime log tells it."""

    start: datetime
    workflow: str
    workflow_id: str  # lower-case resource id
    run_id: str
    action: str  # "" for the run itself
    status: str

    @property
    def kind(self) -> str:
        return "action" if self.action else "run"


@dataclass(frozen=True)
class WorkflowLink:
    step: WorkflowStep
    certain: bool
    reason: str


@dataclass(frozen=True)
class KnownConnection:
    """A workflow whose API connection is known to sign in as a service principal, and how it is known."""

    principal: str  # object id or app id, lower case
    evidence: str


def logic_app_links(source: LogSource, principal: str | Sequence[str], since: datetime, until: datetime, *,
                    interval: timedelta, connections: Mapping[str, str] | None = None) -> list[WorkflowLink]:
    """The workflow runs and actions in [since, until) linked to `principal` (every id of the identity: object id,
    app id...), oldest first.

    `interval` is the longest gap between a sign-in and a step's start for a probable link; `connections` maps an
    API connection or a workflow (name or resource id) to the service principal (object id or app id) it signs in
    as, on top of what the activity log says.
    """
    ids = [principal] if isinstance(principal, str) else list(principal)
    sign_ins, identities = _sign_ins(source, ids, since - interval, until + interval)
    steps = _workflow_steps(source, since, until)
    known = _known_connections(source, since, until, connections or {})
    links = [link for step in steps if (link := _link(step, sign_ins, identities, known, interval))]
    return sorted(links, key=lambda link: (link.step.start, link.step.action))


def trail_events(links: Iterable[WorkflowLink]) -> list[TrailEvent]:
    """The links as trail rows: no IP (the workflow log has none), the link and its reason in the detail."""
    return [TrailEvent(link.step.start, "logic app", _describe(link.step), "",
                       f"{'certain' if link.certain else 'PROBABLE'} link: {link.reason} (run {link.step.run_id})")
            for link in links]


def _describe(step: WorkflowStep) -> str:
    what = f"action {step.action} in {step.workflow}" if step.action else f"run of {step.workflow}"
    return f"{what} {step.status}".strip()


def _link(step: WorkflowStep, sign_ins: list[SignIn], identities: set[str], known: dict[str, KnownConnection],
          interval: timedelta) -> WorkflowLink | None:
    nearest = _nearest(sign_ins, step.start)
    near = nearest is not None and abs(nearest.time - step.start) <= interval
    timing = _timing(step, nearest) if near else ""
    connection = _connection_of(step, known)
    if connection is None:
        return WorkflowLink(step, False, f"{timing}; no identity in the workflow log") if near else None
    if connection.principal not in identities or (step.action and not near):
        return None  # another principal's workflow, or an action no sign-in shows to be one of this principal's
    return WorkflowLink(step, True, "; ".join(part for part in (timing, connection.evidence) if part))


def _nearest(sign_ins: list[SignIn], moment: datetime) -> SignIn | None:
    """The sign-in closest in time to `moment`; `sign_ins` is sorted by time."""
    index = bisect_left(sign_ins, moment, key=lambda sign_in: sign_in.time)
    candidates = sign_ins[max(index - 1, 0):index + 1]
    return min(candidates, key=lambda sign_in: abs(sign_in.time - moment), default=None)


def _timing(step: WorkflowStep, sign_in: SignIn) -> str:
    gap = step.start - sign_in.time
    kind = "a failed sign-in" if sign_in.failed else "a sign-in"
    if abs(gap) < timedelta(seconds=1):
        return f"{step.kind} started within a second of {kind} to {sign_in.resource}"
    side = "after" if gap > timedelta(0) else "before"
    return f"{step.kind} started {duration(abs(gap))} {side} {kind} to {sign_in.resource}"


def summary(links: list[WorkflowLink], interval: timedelta) -> str:
    """One line for people under the trail: how many links of each kind, and what a probable one means."""
    certain = sum(link.certain for link in links)
    return (f"Logic App runs and actions: {certain} certain, {len(links) - certain} probable (a probable one started "
            f"within {duration(interval)} of a sign-in to a resource connectors call; the workflow log names no "
            "identity)")


def _connection_of(step: WorkflowStep, known: dict[str, KnownConnection]) -> KnownConnection | None:
    return known.get(step.workflow_id) or known.get(step.workflow.lower())


def _header(principals: list[str], start: datetime, end: datetime) -> str:
    return (f"let Principals = dynamic({json.dumps(principals)}); let WindowStart = {kql_datetime(start)}; "
            f"let WindowEnd = {kql_datetime(end)}; let RunSlack = {RUN_SLACK.days}d;\n")


def _sign_ins(source: LogSource, principals: list[str], start: datetime,
              end: datetime) -> tuple[list[SignIn], set[str]]:
    """The principal's sign-ins to connector resources, oldest first, and every id it is known by."""
    rows = source.query(_header(principals, start, end) + SIGN_INS, start, end)
    identities = {principal.lower() for principal in principals} | {str(row[column]).lower() for row in rows
                                        for column in ("ServicePrincipalId", "AppId") if row[column]}
    sign_ins = [SignIn(row["TimeGenerated"], row["ResourceDisplayName"] or "", row["ResultType"] != "0")
                for row in rows if _is_connector_resource(row["ResourceIdentity"], row["ResourceDisplayName"])]
    return sorted(sign_ins, key=lambda sign_in: sign_in.time), identities


def _is_connector_resource(app_id: str | None, name: str | None) -> bool:
    return (app_id or "").lower() in CONNECTOR_RESOURCES or (name or "").lower() in _CONNECTOR_NAMES


def _workflow_steps(source: LogSource, start: datetime, end: datetime) -> list[WorkflowStep]:
    """One step per run and per action: its earliest start, and the status of its latest record."""
    rows = source.query(_header([], start, end) + WORKFLOW_STEPS, start, end + RUN_SLACK)
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    starts: dict[tuple[str, str, str], datetime] = {}
    for row in sorted(rows, key=lambda row: row["TimeGenerated"]):
        key = (row["WorkflowId"] or "", row["RunId"] or "", row["ActionName"] or "")
        latest[key] = row
        starts[key] = min(starts.get(key, row["StartTime"]), row["StartTime"])
    return [WorkflowStep(starts[key], row["Workflow"] or "", key[0], key[1], key[2], row["Status"] or "")
            for key, row in latest.items()]


def _known_connections(source: LogSource, since: datetime, until: datetime,
                       configured: Mapping[str, str]) -> dict[str, KnownConnection]:
    """Workflow (resource id and name, lower case) -> the principal its API connection signs in as."""
    start = since - CONNECTION_LOOKBACK
    rows = source.query(_header([], start, until) + RESOURCE_WRITES, start, until)
    settings = {key.lower(): KnownConnection(value.lower(), f"LOGIC_APP_CONNECTIONS maps {key} to this service "
                                                            "principal") for key, value in configured.items()}
    connection_principals = dict(settings)
    workflow_connections: dict[str, list[str]] = {}
    for row in _succeeded_writes(rows):
        body = _request_body(row["Properties_d"])
        if row["Operation"] == "microsoft.web/connections/write":
            client_id = str((body.get("properties", {}).get("parameterValues") or {}).get("token:clientId", ""))
            if client_id:
                name = _name(row["ResourceId"])
                connection_principals[row["ResourceId"]] = KnownConnection(
                    client_id.lower(), f"its API connection {name} signs in as this service principal "
                                       f"(activity log: connection written {moment(row['TimeGenerated'])})")
        else:
            references = (body.get("properties", {}).get("parameters", {}).get("$connections", {}).get("value") or {})
            workflow_connections[row["ResourceId"]] = [str(ref.get("connectionId", "")).lower()
                                                       for ref in references.values() if isinstance(ref, dict)]
    known = dict(settings)
    for workflow, connection_ids in workflow_connections.items():
        for connection_id in connection_ids:
            found = connection_principals.get(connection_id) or connection_principals.get(_name(connection_id))
            if found:
                known[workflow] = known[_name(workflow)] = found
    return known


def _succeeded_writes(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records carrying a request body (ARM puts it on the Start record) of writes that succeeded, oldest
    first."""
    succeeded = {row["CorrelationId"] for row in rows if str(row["Status"]).lower() in ("success", "succeeded")}
    return sorted((row for row in rows if row["CorrelationId"] in succeeded and _request_body(row["Properties_d"])),
                  key=lambda row: row["TimeGenerated"])


def _request_body(properties: Any) -> dict[str, Any]:
    """The ARM request body an activity record carries in Properties_d.requestbody (JSON text); {} without one."""
    if not isinstance(properties, dict):
        return {}
    body = properties.get("requestbody")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, dict) else {}


def _name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1].lower()
