"""`GET /api/credentials`: the stored credential inventory, filtered and paged.

The router is included in create_api's `/api` router, so it has the same authentication (the
function key behind the Functions host, `x-api-key` locally), the same error bodies and the same
refusal of unknown or repeated query parameters as the findings endpoints.

Filters, all relative to the time the stored inventory describes (the audit that took it):
`expiring_within` (not yet expired, ending within the span), `unused_for` (no sign-in with it for
the span; a credential never seen counts only when the logs covered the span), `privileged`.
Spans are `30d`, `12h`, `90m` or an ISO 8601 duration in weeks, days, hours, minutes or seconds
(`P30D`, `P2W`, `PT36H`, `P1DT12H`); years and months are refused, being of no fixed length.
A bad span is a 422 naming the parameter; a forged token, or one issued before the inventory was
replaced, a 400.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from shared.api.app import MAX_LIMIT, MAX_TOKEN_LENGTH, _known_query, _store_errors
from shared.api.models import UtcDatetime
from shared.posture.hygiene import parse_span

if TYPE_CHECKING:
    from shared.store.tables import TableFindingStore

MAX_SPAN_TEXT = 40
SPAN_HELP = "`30d`, `12h`, or ISO 8601 such as `P30D`, `P2W`, `PT36H`"


class CredentialOwner(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    type: str = Field(description="user, servicePrincipal, group or unknown")


class Credential(BaseModel):
    """One credential a workload identity holds, with its last use and why it matters."""

    model_config = ConfigDict(from_attributes=True)

    principal_id: str = Field(description="Service principal object id")
    principal_name: str
    principal_type: str = Field(description="application, managed identity or other")
    app_id: str
    application_id: str | None = Field(None, description="Application object id, when registered in this tenant")
    held_on: Literal["application", "servicePrincipal"]
    key_id: str
    display_name: str | None = None
    type: Literal["secret", "certificate", "federated"]
    thumbprint: str | None = None
    issuer: str | None = Field(None, description="Federated credentials: the trusted issuer")
    subject: str | None = Field(None, description="Federated credentials: the trusted subject")
    start: UtcDatetime | None = None
    end: UtcDatetime | None = None
    status: Literal["expired", "expiring", "active", "no end date"]
    days_to_expiry: int | None = None
    lifetime_days: int | None = None
    last_used: UtcDatetime | None = Field(None, description="Latest sign-in that used it, within the logs read")
    usage_known: bool = Field(description="False when the logs did not reach back over the whole unused horizon")
    owners: list[CredentialOwner]
    privileged: bool
    privileged_reasons: list[str] = Field(description="Permissions and roles that make it privileged")


class CredentialPage(BaseModel):
    items: list[Credential]
    continuation: str | None = Field(description="Pass as `continuation` for the next page; null on the last page")


def _span(name: str, text: str | None) -> timedelta | None:
    if text is None or not text.strip():
        return None
    try:
        return parse_span(text)
    except ValueError as error:
        raise HTTPException(422, detail=[{"type": "value_error", "loc": ["query", name], "msg": str(error)}]) from None


def credentials_router(store: Callable[[], TableFindingStore]) -> APIRouter:
    """The `/credentials` route; include it in the authenticated `/api` router."""
    router = APIRouter()

    @router.get("/credentials", response_model=CredentialPage, tags=["credentials"],
                summary="The credential inventory of the latest audit, soonest expiry first",
                dependencies=[Depends(_known_query("expiring_within", "unused_for", "privileged", "limit",
                                                   "continuation"))])
    def list_credentials(
        expiring_within: str | None = Query(None, max_length=MAX_SPAN_TEXT,
                                            description=f"Not yet expired and ending within this span ({SPAN_HELP})"),
        unused_for: str | None = Query(None, max_length=MAX_SPAN_TEXT,
                                       description=f"Not used to sign in for this span ({SPAN_HELP})"),
        privileged: bool | None = Query(None, description="Only credentials of privileged identities (true) or of "
                                                          "the others (false)"),
        limit: int = Query(100, ge=1, le=MAX_LIMIT, description="Page size"),
        continuation: str | None = Query(None, max_length=MAX_TOKEN_LENGTH,
                                         description="The `continuation` of the previous page, with the same "
                                                     "filters"),
    ) -> CredentialPage:
        within, unused = _span("expiring_within", expiring_within), _span("unused_for", unused_for)
        with _store_errors():
            items, token = store().query_credentials(expiring_within=within, unused_for=unused,
                                                     privileged=privileged, limit=limit,
                                                     continuation=continuation or None)
        return CredentialPage(items=[Credential.model_validate(item) for item in items], continuation=token)

    return router
