"""Which credentials the workload identities actually use, read from their sign-in logs.

One KQL query over AADServicePrincipalSignInLogs and AADManagedIdentitySignInLogs, through the
LogSource port (Log Analytics in Azure, the embedded engine locally), returns:

- per service principal, its last successful sign-in (`principal`) and its last successful
  sign-in that names no credential at all (`unattributed`: such sign-ins could have used any);
- per (service principal, ServicePrincipalCredentialKeyId), (service principal,
  ServicePrincipalCredentialThumbprint) and (service principal, FederatedCredentialId), the last
  successful use (`keyId`, `thumbprint`, `federated`);
- per table, the earliest record read (`earliest`), so "unused for 30 days" is only claimed
  when the logs reach back 30 days.

The query keeps the catalog's time contract: it reads `WindowStart`/`WindowEnd` from a one-line
header (see `usage_query`), never `now()` or `ago()`, so a past day can be judged again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.catalog.render import kql_datetime
from shared.logsource.base import LogSource, Row

SERVICE_PRINCIPAL_TABLE = "AADServicePrincipalSignInLogs"
MANAGED_IDENTITY_TABLE = "AADManagedIdentitySignInLogs"
# The oldest day of a workspace's retention is partly aged out; a day's grace keeps a 90-day
# workspace from counting as "shorter than 90 days".
COVERAGE_GRACE = timedelta(days=1)

USAGE_QUERY = """\
let SignIns = union isfuzzy=true AADServicePrincipalSignInLogs, AADManagedIdentitySignInLogs
    | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd;
let Successes = SignIns | where ResultType == "0";
union
    (SignIns
        | summarize LastUsed = min(TimeGenerated) by Key = Type
        | extend Kind = "earliest", ServicePrincipalId = ""),
    (Successes
        | summarize LastUsed = max(TimeGenerated) by ServicePrincipalId = tolower(ServicePrincipalId)
        | extend Kind = "principal", Key = ""),
    (Successes
        | where isempty(ServicePrincipalCredentialKeyId) and isempty(ServicePrincipalCredentialThumbprint)
            and isempty(FederatedCredentialId)
        | summarize LastUsed = max(TimeGenerated) by ServicePrincipalId = tolower(ServicePrincipalId)
        | extend Kind = "unattributed", Key = ""),
    (Successes
        | where isnotempty(ServicePrincipalCredentialKeyId)
        | summarize LastUsed = max(TimeGenerated)
            by ServicePrincipalId = tolower(ServicePrincipalId), Key = tolower(ServicePrincipalCredentialKeyId)
        | extend Kind = "keyId"),
    (Successes
        | where isnotempty(ServicePrincipalCredentialThumbprint)
        | summarize LastUsed = max(TimeGenerated)
            by ServicePrincipalId = tolower(ServicePrincipalId), Key = toupper(ServicePrincipalCredentialThumbprint)
        | extend Kind = "thumbprint"),
    (Successes
        | where isnotempty(FederatedCredentialId)
        | summarize LastUsed = max(TimeGenerated)
            by ServicePrincipalId = tolower(ServicePrincipalId), Key = tolower(FederatedCredentialId)
        | extend Kind = "federated")
| project Kind, ServicePrincipalId, Key, LastUsed
"""


def usage_header(start: datetime, end: datetime) -> str:
    return f"let WindowStart = {kql_datetime(start)}; let WindowEnd = {kql_datetime(end)};"


def usage_query(start: datetime, end: datetime) -> str:
    """The query text with its one-line window header."""
    return usage_header(start, end) + "\n" + USAGE_QUERY


@dataclass
class SignInUsage:
    """Last successful uses, keyed in lower case (thumbprints in upper case), and where the logs start."""

    read_from: datetime
    read_until: datetime
    logs_start: dict[str, datetime] = field(default_factory=dict)  # table -> earliest record read
    principals: dict[str, datetime] = field(default_factory=dict)  # sp id -> last successful sign-in
    unattributed: dict[str, datetime] = field(default_factory=dict)  # sp id -> last success naming no credential
    key_ids: dict[tuple[str, str], datetime] = field(default_factory=dict)
    thumbprints: dict[tuple[str, str], datetime] = field(default_factory=dict)
    federated: dict[tuple[str, str], datetime] = field(default_factory=dict)

    def last_sign_in(self, principal_id: str) -> datetime | None:
        return self.principals.get(principal_id.lower())

    def last_unattributed(self, principal_id: str) -> datetime | None:
        return self.unattributed.get(principal_id.lower())

    def last_used(self, principal_id: str, key_id: str | None = None, thumbprint: str | None = None,
                  federated_id: str | None = None) -> datetime | None:
        """The latest successful sign-in by key id, by certificate thumbprint (hex, any case) or federated id."""
        principal = principal_id.lower()
        moments = [self.key_ids.get((principal, key_id.lower())) if key_id else None,
                   self.thumbprints.get((principal, normal_thumbprint(thumbprint))) if thumbprint else None,
                   self.federated.get((principal, federated_id.lower())) if federated_id else None]
        return max((moment for moment in moments if moment is not None), default=None)

    def start_for(self, managed_identity: bool) -> datetime | None:
        """The earliest record of the table this kind of identity signs in to; None: no records at all."""
        return self.logs_start.get(MANAGED_IDENTITY_TABLE if managed_identity else SERVICE_PRINCIPAL_TABLE)

    def covers(self, managed_identity: bool, since: datetime) -> bool:
        """Do the logs reach back to `since` (so absence of a sign-in after it means something)?"""
        start = self.start_for(managed_identity)
        return start is not None and start <= since + COVERAGE_GRACE


def normal_thumbprint(thumbprint: str | None) -> str:
    """Thumbprints compare as upper-case hex without separators (Graph and the logs differ in case)."""
    return "".join(ch for ch in (thumbprint or "") if ch.isalnum()).upper()


def usage_from_rows(rows: list[Row], start: datetime, end: datetime) -> SignInUsage:
    usage = SignInUsage(read_from=start, read_until=end)
    keyed = {"keyId": usage.key_ids, "thumbprint": usage.thumbprints, "federated": usage.federated}
    for row in rows:
        kind, moment = row.get("Kind"), row.get("LastUsed")
        principal, key = (row.get("ServicePrincipalId") or "").lower(), row.get("Key") or ""
        if not isinstance(moment, datetime):
            continue
        if kind == "earliest":
            usage.logs_start[key] = moment
        elif kind == "principal":
            usage.principals[principal] = moment
        elif kind == "unattributed":
            usage.unattributed[principal] = moment
        elif kind in keyed:
            keyed[kind][(principal, normal_thumbprint(key) if kind == "thumbprint" else key.lower())] = moment
    return usage


def read_usage(source: LogSource, now: datetime, lookback: timedelta) -> SignInUsage:
    """Usage over [now - lookback, now); LogQueryError when the source cannot answer."""
    start = now - lookback
    return usage_from_rows(source.query(usage_query(start, now), start, now), start, now)
