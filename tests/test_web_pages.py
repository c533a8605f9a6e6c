"""The web pages (shared/web) over the findings store on Azurite, through FastAPI's TestClient: sign-in with the
key (local) or Entra (behind the Functions host), CSRF and Origin checks, filters, triage, suppression and the
credential inventory. The same pages in a real browser: tests/test_web_browser.py."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from fastapi.testclient import TestClient

from shared.api import create_api
from shared.catalog.loader import rule_names
from shared.web.paths import is_web_page
from shared.web.session import CSRF_COOKIE, SESSION_COOKIE, LocalSessions, NotSignedIn

KEY = "test-key-0123456789abcdefghijkl"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
NEW_NETWORK = "workload_signin_new_network"


def text(response: Any) -> str:
    """The page's visible text, tags dropped and whitespace collapsed."""
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", response.text))).strip()


@pytest.fixture
def seeded(finding_store, make_finding) -> dict[str, str]:
    detection = next(rule.id for rule in rule_names() if NEW_NETWORK in rule.names)
    findings = [make_finding("sp-high", detection=detection, severity="High", principal_name="payroll-sync",
                             summary="payroll-sync signed in from 4.175.114.51, not seen before",
                             evidence={"IPAddress": "4.175.114.51", "FirstSeen": "2024-05-01T07:00:00Z",
                                       "Countries": ["NL", "US"]}),
                make_finding("sp-low", detection="det_b", severity="Low", principal_name="backup-job")]
    for hour, finding in enumerate(findings):
        finding_store.upsert_findings([finding], f"run{hour}", T0 + timedelta(hours=hour))
    return {finding.principal_name: finding.id for finding in findings}


@pytest.fixture
def browser(finding_store, tmp_path, monkeypatch):
    """A signed-out browser on the locally served app (suppressions written to a temporary folder)."""
    monkeypatch.setenv("SUPPRESSIONS_PATH", str(tmp_path))
    app = create_api(lambda: finding_store, api_key=KEY, clock=lambda: NOW)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, name: str = "alice@contoso.com") -> None:
    page = client.get("/api/ui/login")
    response = client.post("/api/ui/login", data={"csrf": page.cookies[CSRF_COOKIE], "name": name, "key": KEY,
                                                  "next": "/api/ui/findings"})
    assert response.status_code == 303 and response.headers["location"] == "/api/ui/findings"


def csrf(client: TestClient) -> str:
    return client.cookies[CSRF_COOKIE]


# --- signing in ---------------------------------------------------------------------------------------------------


def test_a_page_sends_a_signed_out_browser_to_the_login_form_and_back(browser, seeded):
    response = browser.get("/api/ui/findings?severity=High")
    assert response.status_code == 303
    assert response.headers["location"] == "/api/ui/login?next=%2Fapi%2Fui%2Ffindings%3Fseverity%3DHigh"
    login = browser.get(response.headers["location"])
    assert 'name="next" value="/api/ui/findings?severity=High"' in login.text
    reply = browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": "alice@contoso.com", "key": KEY,
                                                "next": "/api/ui/findings?severity=High"})
    assert reply.headers["location"] == "/api/ui/findings?severity=High"
    cookie = reply.headers["set-cookie"]
    assert SESSION_COOKIE in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert KEY not in cookie  # the browser holds a signed session, never the key
    assert "Signed in as alice@contoso.com" in text(browser.get("/api/ui/findings"))


def test_a_wrong_key_or_no_name_is_refused_and_the_data_stays_closed(browser, seeded):
    browser.get("/api/ui/login")
    wrong = browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": "mallory", "key": "x" * 30})
    assert wrong.status_code == 401 and "Wrong key." in text(wrong)
    nameless = browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": " ", "key": KEY})
    assert nameless.status_code == 401 and "Give your name" in text(nameless)
    assert browser.get("/api/ui/findings").status_code == 303
    assert browser.get("/api/findings").status_code == 401  # the API still wants its header


def test_login_goes_back_only_to_these_pages(browser):
    browser.get("/api/ui/login")
    for target in ("https://evil.example/", "//evil.example/api/ui/", "/api/ui/..//evil", "/api/findings"):
        reply = browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": "a", "key": KEY, "next": target})
        assert reply.headers["location"] == "/api/ui/findings", target


def test_a_forged_expired_or_old_key_session_is_refused():
    sessions = LocalSessions(KEY, now=lambda: 1_000_000)
    cookie = sessions.issue("alice")
    assert sessions.viewer(cookie).name == "alice"
    signature = cookie.rsplit(".", 1)[1]
    forged = base64.urlsafe_b64encode(json.dumps({"by": "mallory", "exp": 9_999_999_999}).encode()).decode()
    for bad in (f"{forged}.{signature}", "", "garbage", cookie + "0"):
        with pytest.raises(NotSignedIn):
            sessions.viewer(bad)
    with pytest.raises(NotSignedIn, match="ended"):
        LocalSessions(KEY, now=lambda: 1_000_000 + 13 * 3600).viewer(cookie)
    with pytest.raises(NotSignedIn, match="key changed"):
        LocalSessions("another-key-0123456789abcdef").viewer(cookie)


def test_sign_out_ends_the_session(browser, seeded):
    sign_in(browser)
    reply = browser.post("/api/ui/logout", data={"csrf": csrf(browser)})
    assert reply.status_code == 303
    assert browser.get("/api/ui/findings").status_code == 303


# --- form checks and headers --------------------------------------------------------------------------------------


def test_every_page_sets_a_strict_content_security_policy_and_no_third_party_asset(browser, seeded):
    sign_in(browser)
    for path in ("/api/ui/findings", f"/api/ui/findings/{seeded['payroll-sync']}", "/api/ui/credentials",
                 "/api/ui/login"):
        page = browser.get(path)
        assert page.status_code == 200, path
        assert page.headers["content-security-policy"].startswith("default-src 'none'; style-src 'self'")
        assert page.headers["cache-control"] == "no-store"
        assert not re.search(r'(src|href)="(https?:)?//(?!entra\.microsoft\.com|attack\.mitre\.org)', page.text)
        assert "<script" not in page.text


def test_a_form_without_the_csrf_token_or_from_another_origin_changes_nothing(browser, finding_store, seeded):
    sign_in(browser)
    finding_id = seeded["payroll-sync"]
    version = finding_store.get_finding(finding_id).version
    path = f"/api/ui/findings/{finding_id}/triage"
    for data, headers in (({"action": "acknowledged", "version": version}, {}),
                          ({"action": "acknowledged", "version": version, "csrf": "guess"}, {}),
                          ({"action": "acknowledged", "version": version, "csrf": csrf(browser)},
                           {"origin": "https://evil.example"})):
        reply = browser.post(path, data=data, headers=headers)
        assert reply.status_code == 403, data
    assert finding_store.get_finding(finding_id).status == "new"


# --- findings -------------------------------------------------------------------------------------------------------


def test_filters_narrow_the_list_and_a_bad_filter_is_named(browser, seeded):
    sign_in(browser)
    everything = text(browser.get("/api/ui/findings"))
    assert "payroll-sync" in everything and "backup-job" in everything
    high = text(browser.get("/api/ui/findings?severity=High"))
    assert "payroll-sync" in high and "backup-job" not in high
    by_identity = text(browser.get("/api/ui/findings?principal=backup-job"))
    assert "backup-job" in by_identity and "payroll-sync" not in by_identity
    by_detection = text(browser.get(f"/api/ui/findings?detection={NEW_NETWORK}"))
    assert "payroll-sync" in by_detection and "backup-job" not in by_detection
    assert "No finding matches" in text(browser.get("/api/ui/findings?status=resolved"))
    assert "No finding matches" in text(browser.get("/api/ui/findings?since=2024-05-02"))
    assert "payroll-sync" in text(browser.get("/api/ui/findings?since=2024-05-01&until=2024-05-01"))
    unknown = text(browser.get("/api/ui/findings?principal=nobody-here&since=yesterday"))
    assert "principal: unknown identity nobody-here" in unknown
    assert "since: yesterday is not a day such as 2026-03-14" in unknown


def test_the_list_pages_with_a_link_that_keeps_the_filters(browser, finding_store, make_finding):
    for n in range(53):
        finding_store.upsert_findings([make_finding(f"sp{n:02d}", severity="High")], f"r{n}",
                                      T0 + timedelta(minutes=n))
    sign_in(browser)
    first = browser.get("/api/ui/findings?severity=High")
    assert first.text.count('data-label="Severity"') == 50
    link = unescape(re.search(r'href="(\?[^"]+)" id="next-page"', first.text).group(1))
    assert "severity=High" in link
    second = browser.get("/api/ui/findings" + link)
    assert second.text.count('data-label="Severity"') == 3
    forged = browser.get("/api/ui/findings?severity=High&continuation=forged")
    assert forged.status_code == 200 and "next page:" in text(forged) and 'data-label="Severity"' not in forged.text
    assert "next page:" in text(browser.get("/api/ui/credentials?continuation=forged"))


def test_a_finding_page_explains_the_finding_in_text_for_people(browser, seeded):
    sign_in(browser)
    page = text(browser.get(f"/api/ui/findings/{seeded['payroll-sync']}"))
    assert "payroll-sync signed in from 4.175.114.51, not seen before" in page
    assert "FirstSeen 2024-05-01 07:00 UTC" in page and "Countries NL and US" in page
    assert "What to do" in page and "The rule gives no remediation" not in page
    assert "MITRE ATT&CK T1078" in page
    assert "No logs to read the trail from" in page  # served without --logs
    assert "+00:00" not in page and "['" not in page
    assert browser.get("/api/ui/findings/" + "0" * 32).status_code == 404


def test_triage_from_the_page_lands_in_the_store_with_the_signed_in_name(browser, finding_store, seeded):
    sign_in(browser, "alice@contoso.com")
    finding_id = seeded["payroll-sync"]
    version = finding_store.get_finding(finding_id).version
    reply = browser.post(f"/api/ui/findings/{finding_id}/triage",
                         data={"csrf": csrf(browser), "action": "acknowledged", "comment": "asked the owners",
                               "version": version})
    assert reply.status_code == 303
    stored = finding_store.get_finding(finding_id)
    assert (stored.status, stored.triaged_by, stored.comment) == ("acknowledged", "alice@contoso.com",
                                                                  "asked the owners")
    page = text(browser.get(reply.headers["location"]))
    assert "Saved: Acknowledge." in page
    assert "acknowledged, by alice@contoso.com at 2024-06-01 12:00 UTC" in page
    assert "2024-06-01 12:00 UTC alice@contoso.com new → acknowledged asked the owners" in page
    comment = browser.post(f"/api/ui/findings/{finding_id}/triage",
                           data={"csrf": csrf(browser), "action": "comment", "comment": "owners confirm",
                                 "version": stored.version})
    assert comment.status_code == 303
    assert finding_store.get_finding(finding_id).history[-1].field == "comment"


def test_a_decision_on_a_finding_someone_changed_meanwhile_is_not_saved(browser, finding_store, seeded):
    sign_in(browser)
    finding_id = seeded["payroll-sync"]
    seen = finding_store.get_finding(finding_id).version
    from shared.store.model import Triage

    finding_store.triage(finding_id, Triage(by="bob", status="resolved"), NOW)
    reply = browser.post(f"/api/ui/findings/{finding_id}/triage",
                         data={"csrf": csrf(browser), "action": "false_positive", "version": seen})
    assert reply.status_code == 409
    assert "Someone changed this finding since you opened it (it is resolved now)" in text(reply)
    assert finding_store.get_finding(finding_id).status == "resolved"


def test_a_triage_without_a_status_or_comment_or_with_suppressed_is_refused(browser, finding_store, seeded):
    sign_in(browser)
    finding_id = seeded["payroll-sync"]
    version = finding_store.get_finding(finding_id).version
    empty = browser.post(f"/api/ui/findings/{finding_id}/triage",
                         data={"csrf": csrf(browser), "action": "comment", "comment": " ", "version": version})
    assert empty.status_code == 422 and "a triage needs a status, a comment or both" in text(empty)
    suppressed = browser.post(f"/api/ui/findings/{finding_id}/triage",
                              data={"csrf": csrf(browser), "action": "suppressed", "version": version})
    assert suppressed.status_code == 422 and "set only by a suppression file" in text(suppressed)
    assert finding_store.get_finding(finding_id).history == []


def test_suppress_writes_the_file_locally_for_review(browser, seeded, tmp_path):
    sign_in(browser, "alice@contoso.com")
    reply = browser.post(f"/api/ui/findings/{seeded['payroll-sync']}/suppress",
                         data={"csrf": csrf(browser), "reason": "the VPN egress", "until": "2024-08-01"})
    assert reply.status_code == 200 and "Review it and commit it" in text(reply)
    [written] = tmp_path.glob("*.yaml")
    content = written.read_text()
    assert "reason: the VPN egress" in content and "owner: alice@contoso.com" in content
    too_late = browser.post(f"/api/ui/findings/{seeded['payroll-sync']}/suppress",
                            data={"csrf": csrf(browser), "reason": "forever", "until": "2030-01-01"})
    assert too_late.status_code == 422 and "No suppression written" in text(too_late)
    assert len(list(tmp_path.glob("*.yaml"))) == 1


# --- credentials ----------------------------------------------------------------------------------------------------


def test_the_credential_inventory_with_its_filters(browser, finding_store):
    from test_credentials_store import NOW as INVENTORY_NOW
    from test_credentials_store import make_record

    finding_store.replace_inventory([make_record(1, end_days=10, used_days_ago=1),
                                     make_record(2, end_days=300, used_days_ago=200),
                                     make_record(3, end_days=200, used_days_ago=1, privileged=True,
                                                 privileged_reasons=["Application.ReadWrite.All"])],
                                    INVENTORY_NOW)
    sign_in(browser)
    everything = text(browser.get("/api/ui/credentials"))
    assert all(f"app-{n}" in everything for n in (1, 2, 3))
    assert "Owner 1" in everything and "Application.ReadWrite.All" in everything
    expiring = text(browser.get("/api/ui/credentials?expiring_within=30d"))
    assert "app-1" in expiring and "app-2" not in expiring
    unused = text(browser.get("/api/ui/credentials?unused_for=90d"))
    assert "app-2" in unused and "app-1" not in unused
    privileged = text(browser.get("/api/ui/credentials?privileged=yes"))
    assert "app-3" in privileged and "app-1" not in privileged
    bad = text(browser.get("/api/ui/credentials?unused_for=3 months"))
    assert "unused for:" in bad and "app-1" not in bad


# --- behind the Functions host (Azure): Entra sign-in ---------------------------------------------------------------


def client_principal(name: str, *roles: str) -> dict[str, str]:
    claims = [{"typ": "name", "val": name}, *({"typ": "roles", "val": role} for role in roles)]
    principal = {"auth_typ": "aad", "name_typ": "name", "role_typ": "roles", "claims": claims}
    return {"x-ms-client-principal-name": name,
            "x-ms-client-principal": base64.b64encode(json.dumps(principal).encode()).decode()}


@pytest.fixture
def hosted_pages(finding_store):
    """The pages as function_app serves them: the anonymous `browser_pages` function in front of the app."""

    def build(easy_auth: bool):
        app = func.AsgiFunctionApp(app=create_api(lambda: finding_store, api_key=None, clock=lambda: NOW,
                                                  easy_auth=easy_auth), http_auth_level=func.AuthLevel.FUNCTION)

        async def handler(request: func.HttpRequest) -> func.HttpResponse:
            return await app.middleware.handle_async(request, None)

        def call(method: str, path: str, headers: dict[str, str] | None = None, form: str = "") -> func.HttpResponse:
            request = func.HttpRequest(method, url=f"https://wiaudit-func.azurewebsites.net{path}",
                                       headers={"content-type": "application/x-www-form-urlencoded",
                                                **(headers or {})}, body=form.encode())
            return asyncio.run(handler(request))

        return call

    return build


def test_in_azure_the_pages_refuse_without_entra_sign_in(hosted_pages, seeded):
    call = hosted_pages(easy_auth=False)
    response = call("GET", "/api/ui/findings", headers=client_principal("mallory@contoso.com", "Findings.Triage"))
    assert response.status_code == 403 and b"need Entra sign-in" in response.get_body()


def test_in_azure_a_signed_in_analyst_triages_as_themselves(hosted_pages, finding_store, seeded):
    call = hosted_pages(easy_auth=True)
    assert call("GET", "/api/ui/findings").status_code == 302  # to /.auth/login/aad
    no_role = call("GET", "/api/ui/findings", headers=client_principal("dave@contoso.com"))
    assert no_role.status_code == 403 and b"Findings.Triage" in no_role.get_body()
    carol = client_principal("carol@contoso.com", "Findings.Triage")
    page = call("GET", f"/api/ui/findings/{seeded['payroll-sync']}", headers=carol)
    assert page.status_code == 200 and b"carol@contoso.com" in page.get_body()
    token = re.search(r"wiaudit_csrf=([^;]+)", page.headers["set-cookie"]).group(1)
    version = finding_store.get_finding(seeded["payroll-sync"]).version
    reply = call("POST", f"/api/ui/findings/{seeded['payroll-sync']}/triage",
                 headers={**carol, "cookie": f"wiaudit_csrf={token}"},
                 form=f"csrf={token}&action=resolved&version={version}")
    assert reply.status_code == 303
    assert finding_store.get_finding(seeded["payroll-sync"]).triaged_by == "carol@contoso.com"
    suppress = call("POST", f"/api/ui/findings/{seeded['payroll-sync']}/suppress",
                    headers={**carol, "cookie": f"wiaudit_csrf={token}"},
                    form=f"csrf={token}&reason=known+egress&until=2024-08-01")
    body = suppress.get_body().decode()
    assert suppress.status_code == 200 and "cannot write to its deployed folder" in body
    assert "owner: carol@contoso.com" in unescape(body)


def test_the_anonymous_function_passes_on_only_web_page_paths():
    for path in ("/api/ui", "/api/ui/", "/api/ui/findings/abc", "/api/ui/static/site.css"):
        assert is_web_page(path), path
    for path in ("/api/findings", "/api/ui/../findings", "/api/ui/%2e%2e/findings", "/api/ui/x%2F..%2Ffindings",
                 "/api/uix", "/api/ui/./findings", "/api/ui\\..\\findings"):
        assert not is_web_page(path), path


def test_function_app_serves_the_pages_anonymously_and_the_api_with_the_function_key(function_app_functions):
    pages = function_app_functions["browser_pages"].get_trigger().get_dict_repr()
    api = function_app_functions["http_app_func"].get_trigger().get_dict_repr()
    assert (pages["route"], pages["authLevel"]) == ("ui/{*page}", func.AuthLevel.ANONYMOUS)
    assert api["authLevel"] == func.AuthLevel.FUNCTION


def test_package_data_ships_the_templates_and_stylesheet():
    import tomllib

    patterns = tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["*"]
    assert "*.html" in patterns and "*.css" in patterns


# --- when things go wrong -----------------------------------------------------------------------------------------


def test_a_store_outage_or_missing_store_setting_is_a_page_for_a_person_and_json_for_the_api(unavailable_stores):
    reasons = {"unreachable": "cannot be reached just now.",
               "unconfigured": "is not configured: setting FINDINGS_TABLE_ENDPOINT is not set."}
    for factory, cause in unavailable_stores:
        with TestClient(create_api(factory, api_key=KEY, clock=lambda: NOW), follow_redirects=False) as client:
            sign_in(client)
            page = client.get("/api/ui/findings")
            assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
            assert page.headers["retry-after"] == "60"
            assert "default-src 'none'" in page.headers["content-security-policy"]
            assert f"Findings unavailable The findings store {reasons[cause]} Try again in a minute." in text(page)
            api = client.get("/api/findings", headers={"x-api-key": KEY})
            assert api.status_code == 503 and api.headers["content-type"] == "application/problem+json"


def test_wrong_keys_from_one_address_lock_the_form_for_that_address_without_checking_the_key(browser, seeded):
    from shared.web.session import FAILED_SIGN_INS

    browser.get("/api/ui/login")
    for _ in range(FAILED_SIGN_INS):
        assert browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": "mallory",
                                                   "key": "x" * 30}).status_code == 401
    locked = browser.post("/api/ui/login", data={"csrf": csrf(browser), "name": "alice", "key": KEY})
    assert locked.status_code == 429 and locked.headers["retry-after"] == "300"
    assert "Too many wrong keys from this address: try again in 5 min." in text(locked)
    assert SESSION_COOKIE not in locked.headers.get("set-cookie", "")


def test_the_lock_lifts_when_the_oldest_wrong_key_is_five_minutes_old_and_a_right_key_clears_the_count():
    from shared.web.session import FAILED_SIGN_INS, SIGN_IN_LOCKOUT_SECONDS, SignInAttempts

    clock = [1000.0]
    attempts = SignInAttempts(lambda: clock[0])
    for second in range(FAILED_SIGN_INS):
        clock[0] = 1000.0 + second
        attempts.failed("203.0.113.7")
    assert attempts.seconds_to_wait("203.0.113.7") == SIGN_IN_LOCKOUT_SECONDS - (FAILED_SIGN_INS - 1)
    assert attempts.seconds_to_wait("198.51.100.2") == 0  # another address is not held back
    clock[0] = 1000.0 + SIGN_IN_LOCKOUT_SECONDS
    assert attempts.seconds_to_wait("203.0.113.7") == 0  # the oldest has aged out: four left, one more try
    attempts.failed("203.0.113.7")
    assert attempts.seconds_to_wait("203.0.113.7") == 1
    attempts.succeeded("203.0.113.7")
    assert attempts.seconds_to_wait("203.0.113.7") == 0
