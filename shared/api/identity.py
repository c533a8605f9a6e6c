"""Who made a triage decision: the one place that decides the `by` a triage records.

In Azure with App Service authentication ("Easy Auth", Entra sign-in) on the Function app, the
platform validates the caller's Entra token and passes who it is in `X-MS-CLIENT-PRINCIPAL-NAME`
and `X-MS-CLIENT-PRINCIPAL` (base64 JSON of the token's claims). It removes those headers from
what clients send, so there, and only there, they can be believed. A signed-in caller must hold
the app role `Findings.Triage` (its token's `roles` claim) and is recorded by name; a `by` in the
body is ignored. A caller without a sign-in (automation with the function key) names the analyst
in `by`, its own statement.

Without Easy Auth anyone can send those headers: with only a function key in front, or locally
under `wiaudit serve`, they are never read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping

from fastapi import HTTPException

from shared.api.problems import invalid

PRINCIPAL_HEADER = "x-ms-client-principal"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"
TRIAGE_ROLE = "Findings.Triage"
MAX_NAME = 256


def easy_auth_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """Running on App Service / Functions in Azure with App Service authentication on.

    The platform sets both variables itself (`WEBSITE_SITE_NAME` on every app, `WEBSITE_AUTH_ENABLED`
    when authentication is on): they are not app settings of this project.
    """
    env = os.environ if environ is None else environ
    return bool(env.get("WEBSITE_SITE_NAME")) and env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def triage_actor(headers: Mapping[str, str], claimed_by: str | None, *, easy_auth: bool) -> str:
    """The name a triage records. 403 for a signed-in caller without the triage role; 422 when no one is named."""
    signed_in = (headers.get(PRINCIPAL_NAME_HEADER) or "").strip()[:MAX_NAME] if easy_auth else ""
    if signed_in:
        if TRIAGE_ROLE not in roles(headers.get(PRINCIPAL_HEADER)):
            raise HTTPException(403, detail=f"{signed_in} is signed in but does not hold the app role {TRIAGE_ROLE} "
                                            "that triage needs; ask an admin to assign it")
        return signed_in
    if not claimed_by:
        raise invalid("body", "by", "name who made the decision: the request carries no signed-in identity")
    return claimed_by


def roles(encoded: str | None) -> set[str]:
    """The app roles in an X-MS-CLIENT-PRINCIPAL header (none when it is absent or unreadable)."""
    if not encoded:
        return set()
    try:
        principal = json.loads(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        return set()
    if not isinstance(principal, dict) or not isinstance(principal.get("claims"), list):
        return set()
    role_type = principal.get("role_typ") or "roles"
    return {claim["val"] for claim in principal["claims"]
            if isinstance(claim, dict) and claim.get("typ") in (role_type, "roles")
            and isinstance(claim.get("val"), str)}
