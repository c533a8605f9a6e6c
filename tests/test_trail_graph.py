"""Graph calls in an identity's trail carry the sign-in that issued their token, joined on SignInActivityId =
UniqueTokenIdentifier (not by time): a call made with a token from another IP says so."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.trail import trail

PRINCIPAL = "11111111-1111-4111-8111-111111111111"
APP_ID = "aaaaaaaa-1111-4111-8111-111111111111"
DAY = datetime(2026, 3, 10, tzinfo=UTC)


def at(hour: int, minute: int) -> datetime:
    return DAY.replace(hour=hour, minute=minute)


def graph_call(moment: datetime, token: str, ip: str, uri: str, status: int = 200) -> dict:
    return {"TimeGenerated": moment, "ServicePrincipalId": PRINCIPAL, "AppId": APP_ID, "SignInActivityId": token,
            "IPAddress": ip, "RequestMethod": "GET", "ResponseStatusCode": status, "RequestUri": uri}


@pytest.fixture(scope="module")
def source() -> EmbeddedLogSource:
    database = LogDatabase()
    database.insert("AADServicePrincipalSignInLogs", [(None, row) for row in (
        {"TimeGenerated": DAY - timedelta(hours=1), "ServicePrincipalId": PRINCIPAL, "AppId": APP_ID,
         "ResultType": "0", "IPAddress": "20.1.2.3", "UniqueTokenIdentifier": "tokenBeforeTheTrailStarts"},
        {"TimeGenerated": at(8, 0), "ServicePrincipalId": PRINCIPAL, "AppId": APP_ID, "ResultType": "0",
         "IPAddress": "20.1.2.3", "UniqueTokenIdentifier": "tokenOfTheMorningRun"},
    )])
    database.insert("MicrosoftGraphActivityLogs", [(None, row) for row in (
        graph_call(at(0, 5), "tokenBeforeTheTrailStarts", "20.1.2.3", "https://graph.microsoft.com/v1.0/users"),
        graph_call(at(8, 1), "tokenOfTheMorningRun", "20.1.2.3", "https://graph.microsoft.com/v1.0/groups"),
        graph_call(at(8, 40), "tokenOfTheMorningRun", "198.51.100.23",
                   "https://graph.microsoft.com/v1.0/servicePrincipals", 403),
        graph_call(at(9, 0), "tokenNobodySignedInFor", "20.1.2.3", "https://graph.microsoft.com/v1.0/me"),
    )])
    return EmbeddedLogSource(database, DAY + timedelta(days=1))


def test_each_graph_call_names_the_sign_in_that_issued_its_token(source):
    events = [e for e in trail(source, [PRINCIPAL, APP_ID], DAY, DAY + timedelta(days=1)) if e.source == "graph"]
    assert [(e.time, e.action, e.ip, e.detail) for e in events] == [
        (at(0, 5), "GET 200", "20.1.2.3", "https://graph.microsoft.com/v1.0/users; token of the sign-in at "
                                          "2026-03-09 23:00:00 from the same IP"),
        (at(8, 1), "GET 200", "20.1.2.3", "https://graph.microsoft.com/v1.0/groups; token of the sign-in at "
                                          "2026-03-10 08:00:00 from the same IP"),
        (at(8, 40), "GET 403", "198.51.100.23", "https://graph.microsoft.com/v1.0/servicePrincipals; token of the "
                                                "sign-in at 2026-03-10 08:00:00 from 20.1.2.3, ANOTHER IP"),
        (at(9, 0), "GET 200", "20.1.2.3", "https://graph.microsoft.com/v1.0/me; no sign-in in the logs issued its "
                                          "token"),
    ]


def test_the_sign_in_before_the_trail_is_not_an_event_of_it(source):
    sign_ins = [e for e in trail(source, PRINCIPAL, DAY, DAY + timedelta(days=1)) if e.source == "sign-in"]
    assert [e.time for e in sign_ins] == [at(8, 0)]
