"""GET /api/credentials on the store on Azurite: filters, paging, validation, authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from test_credentials_store import NOW, make_record

from shared.api import create_api
from shared.api.credentials import parse_span

KEY = "test-key-0123456789abcdefghijkl"


@pytest.fixture
def client(finding_store):
    with TestClient(create_api(lambda: finding_store, api_key=KEY), headers={"x-api-key": KEY}) as client:
        yield client


@pytest.fixture
def inventory(finding_store):
    records = [make_record(n, end_days=(n * 7) % 61 - 5, used_days_ago=(n * 11) % 120,
                           privileged=n % 3 == 0) for n in range(1, 58)]
    finding_store.replace_inventory(records, NOW)
    return records


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["principal_name"] for item in response.json()["items"]]


def test_needs_the_api_key(finding_store):
    with TestClient(create_api(lambda: finding_store, api_key=KEY)) as anonymous:
        assert anonymous.get("/api/credentials").status_code == 401
        assert anonymous.get("/api/credentials", headers={"x-api-key": "wrong" * 8}).status_code == 401


def test_empty_store_is_an_empty_page(client):
    assert client.get("/api/credentials").json() == {"items": [], "continuation": None}


def test_items_have_the_documented_shape(client, inventory):
    body = client.get("/api/credentials", params={"limit": 1}).json()
    (item,) = body["items"]
    assert item["end"].endswith("Z") and item["last_used"].endswith("Z")
    assert set(item) >= {"principal_id", "principal_name", "key_id", "display_name", "type", "end", "status",
                         "last_used", "owners", "privileged", "privileged_reasons", "usage_known"}
    assert item["owners"][0] == {"id": item["owners"][0]["id"], "name": item["owners"][0]["name"], "type": "user"}
    assert isinstance(body["continuation"], str)


@pytest.mark.parametrize("limit", [1, 4, 10, 57, 500])
def test_pages_cover_the_inventory_once_in_order(client, inventory, limit):
    seen, token, requests = [], None, 0
    while True:
        params = {"limit": limit, **({"continuation": token} if token else {})}
        response = client.get("/api/credentials", params=params)
        page = names(response)
        assert len(page) <= limit
        seen += page
        token = response.json()["continuation"]
        requests += 1
        if token is None:
            break
    expected = [record.principal_name for record in sorted(inventory, key=lambda r: (r.end, r.principal_id))]
    assert seen == expected  # no duplicates, no gaps, soonest expiry first
    assert requests == -(-len(inventory) // limit)  # a full last page says so: no empty extra page


def test_filters_match_the_records(client, inventory):
    def expected(keep) -> list[str]:
        return [r.principal_name for r in sorted(inventory, key=lambda r: (r.end, r.principal_id)) if keep(r)]

    within = names(client.get("/api/credentials", params={"expiring_within": "30d", "limit": 500}))
    assert within == expected(lambda r: NOW < r.end < NOW + timedelta(days=30)) != []
    assert names(client.get("/api/credentials", params={"expiring_within": "P30D", "limit": 500})) == within
    unused = names(client.get("/api/credentials", params={"unused_for": "P8W", "limit": 500}))
    assert unused == expected(lambda r: r.last_used < NOW - timedelta(weeks=8)) != []
    privileged = names(client.get("/api/credentials", params={"privileged": "true", "limit": 500}))
    assert privileged == expected(lambda r: r.privileged) != []
    assert names(client.get("/api/credentials", params={"privileged": "false", "limit": 500})) == \
        expected(lambda r: not r.privileged)
    combined = {"expiring_within": "PT720H", "unused_for": "10d", "privileged": "1", "limit": 2}
    seen, token = [], None
    while True:
        response = client.get("/api/credentials", params={**combined, **({"continuation": token} if token else {})})
        seen += names(response)
        if not (token := response.json()["continuation"]):
            break
    assert seen == expected(lambda r: NOW < r.end < NOW + timedelta(days=30)
                            and r.last_used < NOW - timedelta(days=10) and r.privileged)


@pytest.mark.parametrize("params, status, words", [
    ({"expiring_within": "soon"}, 422, "not a span"),
    ({"expiring_within": "P1Y"}, 422, "not a span"),
    ({"expiring_within": "-5d"}, 422, "not a span"),
    ({"unused_for": "PT"}, 422, "not a span"),
    ({"unused_for": "99999999999d"}, 422, "longer than"),
    ({"unused_for": "P999999999W"}, 422, "longer than"),
    ({"privileged": "maybe"}, 422, "bool"),
    ({"limit": "0"}, 422, "greater than or equal"),
    ({"limit": "501"}, 422, "less than or equal"),
    ({"continuation": "forged.token"}, 422, "not valid for this store"),
    ({"continuation": "garbage"}, 422, "malformed"),
    ({"expiring": "30d"}, 422, "unknown query parameter"),
])
def test_bad_input_is_a_clear_4xx(client, inventory, params, status, words):
    response = client.get("/api/credentials", params=params)
    assert response.status_code == status, response.text
    assert words in response.text


def test_a_token_is_bound_to_its_filters_and_to_its_inventory(client, finding_store, inventory):
    token = client.get("/api/credentials", params={"privileged": "true", "limit": 2}).json()["continuation"]
    response = client.get("/api/credentials", params={"privileged": "false", "limit": 2, "continuation": token})
    assert response.status_code == 422 and "different query" in response.text
    finding_store.replace_inventory(inventory[:3], NOW + timedelta(days=1))
    response = client.get("/api/credentials", params={"privileged": "true", "limit": 2, "continuation": token})
    assert response.status_code == 422 and "request the first page again" in response.text


def test_repeated_filter_is_refused(client):
    response = client.get("/api/credentials?privileged=true&privileged=false")
    assert response.status_code == 422 and "once" in response.text


def test_the_openapi_document_lists_the_route_behind_the_key(client):
    document = client.get("/api/openapi.json").json()
    operation = document["paths"]["/api/credentials"]["get"]
    assert operation["security"] == [{"apiKey": []}]
    assert {p["name"] for p in operation["parameters"]} == {"expiring_within", "unused_for", "privileged", "limit",
                                                           "continuation"}
    assert set(operation["responses"]) >= {"200", "401", "413", "422", "503"}
    assert document["components"]["schemas"]["Credential"]["properties"]["end"]["anyOf"][0]["format"] == "date-time"


@pytest.mark.parametrize("text, span", [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)),
                                        ("P30D", timedelta(days=30)), ("p2w", timedelta(weeks=2)),
                                        ("PT36H", timedelta(hours=36)), ("P1DT12H30M", timedelta(hours=36.5)),
                                        ("PT0.5S", timedelta(seconds=0.5)), (" 7d ", timedelta(days=7))])
def test_spans(text, span):
    assert parse_span(text) == span
