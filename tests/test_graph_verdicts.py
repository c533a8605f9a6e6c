"""Microsoft's verdicts: disabledByMicrosoftStatus is read in the same bulk pages as the rest of an application and
a service principal (msgraph-sdk against the local Graph server), and a tenant without the risk tables sees the
risk rules as not evaluated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from directory_fixtures import make_snapshot
from servers.graph_server import GraphServer
from test_graph_directory import directory_for, expected_requests

from shared.catalog.loader import load_catalog
from shared.logsource.coverage import detection_requirement, measure_coverage
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.windows import slices

DISABLED = "DisabledDueToViolationOfServicesAgreement"

pytestmark = [pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning")]


def test_disabled_by_microsoft_is_read_with_the_bulk_pages():
    tenant = make_snapshot(12, seed=5).model_copy(deep=True)
    sp = next(sp for sp in tenant.servicePrincipals if sp.servicePrincipalType == "Application")
    app = tenant.applications[-1]
    sp.disabledByMicrosoftStatus = DISABLED
    app.disabledByMicrosoftStatus = "NotDisabled"
    with GraphServer(tenant, page_size=5) as server:
        got = directory_for(server, tenant_id=tenant.tenantId).inventory()
        assert server.request_count == expected_requests(server, tenant, 5, organization=False)
        selects = {r.path: r.query["$select"].split(",") for r in server.requests
                   if r.path in ("/applications", "/servicePrincipals") and "owners" in r.query.get("$expand", "")}
    assert "disabledByMicrosoftStatus" in selects["/applications"]
    assert "disabledByMicrosoftStatus" in selects["/servicePrincipals"]
    statuses = {principal.id: principal.disabledByMicrosoftStatus for principal in got.servicePrincipals}
    assert statuses[sp.id] == DISABLED
    assert [s for s in statuses.values() if s] == [DISABLED]
    assert {a.id: a.disabledByMicrosoftStatus for a in got.applications}[app.id] == "NotDisabled"


def test_a_tenant_without_the_risk_tables_shows_microsofts_verdicts_as_not_evaluated():
    """Unlicensed (no Workload Identities Premium) or not exported: no rows is "not evaluated", never clean."""
    day = datetime(2026, 3, 10, tzinfo=UTC)
    database = LogDatabase()
    database.insert("AADServicePrincipalSignInLogs", [(None, {"TimeGenerated": day + timedelta(hours=hour),
                                                              "ServicePrincipalId": "sp-1", "ResultType": "0"})
                                                      for hour in range(0, 48, 6)])
    catalog = load_catalog()
    verdicts = [catalog.get(stem) for stem in ("microsoft_service_principal_risk_events",
                                               "microsoft_risky_service_principal")]
    coverage = measure_coverage(EmbeddedLogSource(database, day + timedelta(days=2)),
                                [detection_requirement(d, slices(day, day + timedelta(days=2), d.frequency))
                                 for d in verdicts])
    gaps = {gap.name: (gap.missing, gap.complete) for gap in coverage.not_evaluated.values()}
    assert gaps == {verdicts[0].name: (["AADServicePrincipalRiskEvents"], True),
                    verdicts[1].name: (["AADRiskyServicePrincipals"], True)}
