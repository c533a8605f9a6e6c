"""The credential inventory: one row per credential a workload identity holds, with its use.

Built from one directory inventory and the sign-in logs (which credential signed in, by
ServicePrincipalCredentialKeyId or ServicePrincipalCredentialThumbprint). The posture checks,
`wiaudit credentials`, `GET /api/credentials` and the digest's hygiene section all read it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

CredentialType = Literal["secret", "certificate", "federated"]
CredentialStatus = Literal["expired", "expiring", "active", "no end date"]


class Owner(BaseModel):
    id: str
    name: str
    type: str = "user"  # user, servicePrincipal, group, unknown
    mail: str | None = None  # a user's mailbox address, where owner notices go


class CredentialRecord(BaseModel):
    principal_id: str = Field(description="Service principal object id")
    principal_name: str
    principal_type: str = Field(description="application, managed identity or other")
    app_id: str
    application_id: str | None = Field(None, description="Application object id, when registered in this tenant")
    held_on: Literal["application", "servicePrincipal"]
    key_id: str
    display_name: str | None = None
    type: CredentialType
    thumbprint: str | None = None
    issuer: str | None = Field(None, description="Federated credentials: the trusted issuer")
    subject: str | None = Field(None, description="Federated credentials: the trusted subject")
    subject_expression: str | None = Field(None, description="Flexible federated credentials: the claims expression")
    start: datetime | None = None
    end: datetime | None = None
    status: CredentialStatus
    days_to_expiry: int | None = None
    lifetime_days: int | None = None
    last_used: datetime | None = Field(None, description="Latest sign-in that used it, within the logs read")
    usage_known: bool = Field(description="False when the logs do not reach back over the whole unused horizon")
    owners: list[Owner] = Field(default_factory=list)
    privileged: bool = False
    privileged_reasons: list[str] = Field(default_factory=list, description="Permissions and roles that make it so")
