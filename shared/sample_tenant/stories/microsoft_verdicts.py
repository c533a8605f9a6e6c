"""Microsoft's own verdicts: Entra ID Protection finds the secret hr-sync forgot in a public repository
(AADServicePrincipalRiskEvents) and rates the service principal high risk (AADRiskyServicePrincipals), and Microsoft
disables the mail vendor's application for abuse (disabledByMicrosoftStatus) while it still holds Mail.Send here."""

from __future__ import annotations

import uuid

from shared.sample_tenant import records
from shared.sample_tenant.stories import Scenario, StoryContext


def leaked_secret_verdict(ctx: StoryContext) -> Scenario:
    hr = ctx.workloads["hr-sync"]
    # The legacy secret the sign-in behaviour story left on the application; its key id is what Microsoft names.
    legacy = next(secret for secret in hr.app.passwordCredentials if secret.displayName == "hr-sync-legacy")
    found = ctx.at(1, 8, 50)
    logged = ctx.at(1, 9, 12)
    detection_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{ctx.factory.tenant_id}/riskDetections/{hr.sp.id}"))
    ctx.activity.book.add("riskevents", logged, records.service_principal_risk_event(
        ctx.factory.tenant_id, logged, detection_id=detection_id, detected=found, sp_id=hr.sp.id, sp_name=hr.name,
        app_id=hr.sp.appId, event_type="leakedCredentials", level="high", key_ids=[legacy.keyId]))
    ctx.activity.book.add("riskysp", logged, records.risky_service_principal(
        ctx.factory.tenant_id, logged, sp_id=hr.sp.id, sp_name=hr.name, app_id=hr.sp.appId, level="high"))
    return Scenario("leaked-secret-verdict", "Microsoft finds hr-sync's forgotten secret in a public repository",
                    "Entra ID Protection found the secret 'hr-sync-legacy' in a public GitHub repository at 08:50 "
                    "(risk detection leakedCredentials, high) and rates hr-sync a risky service principal: "
                    "Microsoft's verdict on the secret someone already used two days earlier.",
                    ("microsoft_service_principal_risk_events", "microsoft_risky_service_principal"), hr.sp.id,
                    hr.name, logged)


def vendor_disabled_by_microsoft(ctx: StoryContext) -> Scenario:
    vendor = ctx.workloads["mailer-saas"]
    vendor.sp.disabledByMicrosoftStatus = "DisabledDueToViolationOfServicesAgreement"
    return Scenario("vendor-disabled-by-microsoft", "Microsoft disabled mailer-saas, which still holds Mail.Send here",
                    "Microsoft disabled the mail vendor's multi-tenant application for violating its terms of service "
                    "(disabledByMicrosoftStatus on its service principal, read from Graph); its consent to Mail.Send "
                    "in this tenant is still in place.", ("disabled_by_microsoft",), vendor.sp.id, vendor.name,
                    ctx.at(0, 0))


STORIES = (leaked_secret_verdict, vendor_disabled_by_microsoft)

# Workloads the stories act on: (kind, name, certificate?). hr-sync and mailer-saas are declared by others.
STORY_WORKLOADS: tuple[tuple[str, str, bool], ...] = ()
