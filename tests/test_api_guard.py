"""The API refuses before it reads: the key check and the body-size limit come before any body byte is read,
errors are RFC 9457 problem documents with one status per kind, and no input is a 500.

The ASGI app is driven directly with a `receive` that counts the body bytes it hands out, so "not read" is
measured, not assumed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.api.guard import MAX_BODY_BYTES

KEY = "guard-key-0123456789abcdefghijkl"
MB = 1024 * 1024


def _no_store() -> Any:
    raise AssertionError("a refused request must not reach the store")


class CountingBody:
    """An ASGI `receive` streaming `size` bytes in 64 KiB chunks, counting what the app pulled."""

    def __init__(self, size: int, chunk: int = 64 * 1024) -> None:
        self.size, self.chunk, self.read = size, chunk, 0

    async def __call__(self) -> dict[str, Any]:
        if self.read >= self.size:
            return {"type": "http.disconnect"}
        part = min(self.chunk, self.size - self.read)
        self.read += part
        return {"type": "http.request", "body": b"{" * part, "more_body": self.read < self.size}


def call(app: Any, method: str, path: str, headers: dict[str, str], body: CountingBody) -> tuple[int, dict, bytes]:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 7071)}
    asyncio.run(app(scope, body, send))
    start = next(message for message in sent if message["type"] == "http.response.start")
    response_headers = {name.decode(): value.decode() for name, value in start["headers"]}
    content = b"".join(message.get("body", b"") for message in sent if message["type"] == "http.response.body")
    return start["status"], response_headers, content


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_an_anonymous_30_mb_body_is_refused_401_without_reading_a_byte(declared):
    app = create_api(_no_store, api_key=KEY)
    body = CountingBody(30 * MB)
    headers = {"content-type": "application/json", **({"content-length": str(30 * MB)} if declared else {})}
    for key in ({}, {"x-api-key": "wrong-key-0123456789abcdefghijk"}):
        status, response_headers, content = call(app, "PATCH", "/api/findings/abc", {**headers, **key}, body)
        assert status == 401 and body.read == 0
        assert response_headers["content-type"] == "application/problem+json"
        assert response_headers["www-authenticate"] == "ApiKey"
        assert json.loads(content)["status"] == 401


def test_a_malformed_anonymous_body_is_401_not_a_parse_error():
    with TestClient(create_api(_no_store, api_key=KEY)) as client:
        response = client.patch("/api/findings/abc", content=b"{not json", headers={"content-type": "application/json"})
        assert response.status_code == 401


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "streamed"])
def test_a_body_over_the_limit_is_413_and_read_no_further_than_the_limit(declared):
    app = create_api(_no_store, api_key=KEY)
    body = CountingBody(30 * MB)
    headers = {"x-api-key": KEY, "content-type": "application/json",
               **({"content-length": str(30 * MB)} if declared else {})}
    status, response_headers, content = call(app, "PATCH", "/api/findings/abc", headers, body)
    assert status == 413 and body.read <= MAX_BODY_BYTES + body.chunk
    assert body.read == (0 if declared else MAX_BODY_BYTES + body.chunk)
    problem = json.loads(content)
    assert problem["title"] == "Content Too Large" or problem["title"] == "Request Entity Too Large"
    assert "64 KiB" in problem["detail"] and response_headers["content-type"] == "application/problem+json"


def test_the_function_host_path_has_the_body_limit_too():
    app = create_api(_no_store, api_key=None)
    status, _, _ = call(app, "PATCH", "/api/findings/abc", {"content-type": "application/json"},
                        CountingBody(MAX_BODY_BYTES + 1))
    assert status == 413


@pytest.fixture
def client(finding_store):
    with TestClient(create_api(lambda: finding_store, api_key=KEY), headers={"x-api-key": KEY}) as client:
        yield client


def test_a_lone_surrogate_in_a_json_body_is_422_problem_details_naming_the_field(client, finding_store, make_finding):
    finding = make_finding("sp1")
    finding_store.upsert_findings([finding], "run", finding.window_end)
    for field in ("by", "comment"):
        body = {"status": "resolved", "by": "alice", "comment": "ok"}
        text = json.dumps(body).replace(f'"{body[field]}"', '"\\udcff"')
        response = client.patch(f"/api/findings/{finding.id}", content=text.encode(),
                                 headers={"content-type": "application/json"})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert set(problem) == {"type", "title", "status", "detail", "errors"}
        assert (problem["type"], problem["status"]) == ("about:blank", 422)
        assert problem["errors"] == [{"in": "body", "field": field, "detail": problem["errors"][0]["detail"]}]
        assert "unicode string" in problem["errors"][0]["detail"]  # never echoes the input (it cannot be encoded)
    assert client.get(f"/api/findings/{finding.id}").json()["status"] == "new"


def test_one_status_for_every_kind_of_invalid_input(client):
    """A bad limit (pydantic's check) and a bad severity (the store's) are the same kind of error: 422."""
    responses = {params: client.get("/api/findings", params=dict([params]))
                 for params in (("limit", "0"), ("limit", "x"), ("severity", "critical"), ("status", "closed"),
                                ("since", "yesterday"), ("continuation", "forged.token"), ("nonsense", "1"))}
    for (field, _), response in responses.items():
        assert response.status_code == 422, (field, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert [error["field"] for error in response.json()["errors"]] == [field]
    response = client.patch("/api/findings/abc", content=b"\xff\xfe not utf-8",
                            headers={"content-type": "application/json"})
    assert response.status_code == 422 and response.json()["errors"][0]["in"] == "body"


def test_every_error_is_a_problem_document(client):
    for response, status in ((client.get("/api/nowhere"), 404), (client.delete("/api/findings"), 405),
                             (client.get("/api/findings/" + "0" * 32), 404)):
        assert response.status_code == status
        assert response.headers["content-type"] == "application/problem+json"
        assert {"type", "title", "status", "detail"} <= set(response.json())


def test_the_document_declares_problem_json_for_errors(client):
    document = client.get("/api/openapi.json").json()
    responses = document["paths"]["/api/findings"]["get"]["responses"]
    assert set(responses["422"]["content"]) == {"application/problem+json"}
    assert set(responses["200"]["content"]) == {"application/json"}
    assert set(document["components"]["schemas"]["Problem"]["required"]) == {"type", "title", "status", "detail"}


def test_no_html_page_and_no_external_asset_is_served(client):
    """No Swagger UI (its assets come from a CDN); nothing the app serves without parameters is HTML or points
    outside the app."""
    assert client.get("/api/docs").status_code == 404 and client.get("/api/redoc").status_code == 404
    assert TestClient(client.app).get("/api/docs").status_code == 401  # not a public path locally
    paths = [route.path for route in client.app.routes if "GET" in getattr(route, "methods", ()) and "{" not in
             route.path]
    assert "/api/openapi.json" in paths and "/api/health" in paths
    for path in paths:
        response = client.get(path)
        assert not response.headers.get("content-type", "").startswith("text/html"), path
        for marker in ("<script", "cdn.jsdelivr", "unpkg.com", "<link"):
            assert marker not in response.text, (path, marker)


def test_principal_headers_are_trusted_only_in_azure_with_app_service_authentication_on():
    from shared.api import ApiConfigurationError
    from shared.api.identity import easy_auth_enabled

    assert easy_auth_enabled({"WEBSITE_SITE_NAME": "func-wiaudit", "WEBSITE_AUTH_ENABLED": "True"})
    for environ in ({}, {"WEBSITE_AUTH_ENABLED": "True"}, {"WEBSITE_SITE_NAME": "func-wiaudit"},
                    {"WEBSITE_SITE_NAME": "func-wiaudit", "WEBSITE_AUTH_ENABLED": "False"}):
        assert not easy_auth_enabled(environ), environ
    with pytest.raises(ApiConfigurationError, match="only be trusted behind the Functions host"):
        create_api(_no_store, api_key=KEY, easy_auth=True)
