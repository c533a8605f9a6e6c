"""The web pages in a real browser: Debian's chromium, driven by Debian's chromedriver through Selenium, against
the app served by uvicorn (as `wiaudit serve` serves it) over the findings store on Azurite and the sample
tenant's logs for the trail. A person signs in, filters, opens a finding, acknowledges it and sees the change on
the page and in the store; every page reads on a 375 px phone without sideways scrolling.

Screenshots of each page go to the test's temporary folder for a person to look at (docs/web-finding.png in the
README is one of them).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import Select, WebDriverWait

from shared.api import create_api
from shared.catalog.loader import rule_names
from shared.explain import rule_by_id
from shared.sample_tenant.generator import SAMPLE_NOW

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
KEY = "browser-test-key-0123456789abcdef"
NEW_NETWORK = "workload_signin_new_network"
WAIT = 60  # seconds a page may take on a busy machine; a bound, not a measurement
BUSIEST_IDENTITY = """AADServicePrincipalSignInLogs
| where ResultType == "0"
| summarize SignIns = count() by ServicePrincipalId, ServicePrincipalName, AppId, Day = bin(TimeGenerated, 1d)
| top 1 by SignIns desc"""


@pytest.fixture(autouse=True)
def browser_installed() -> None:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (apt-get install -y chromium)"
    assert CHROMEDRIVER.exists(), ("Debian's chromedriver is missing: `make test` installs it "
                                   "(apt-get install -y chromium-driver)")


@pytest.fixture
def findings(finding_store, make_finding, sample_source) -> dict[str, str]:
    """A High finding about the sample tenant's busiest identity on its busiest day (so its trail has events),
    and a Low one about another identity."""
    [row] = sample_source.query(BUSIEST_IDENTITY, SAMPLE_NOW - timedelta(days=10), SAMPLE_NOW)
    principal, day = row["ServicePrincipalId"], row["Day"]
    rule = next(rule for rule in rule_names() if NEW_NETWORK in rule.names)
    busy = make_finding(principal, principal_name=row["ServicePrincipalName"], severity="High", detection=rule.id,
                        detection_name=rule_by_id(rule.id).name, window_start=day, window_end=day + timedelta(days=1),
                        summary=f"{row['ServicePrincipalName']} signed in 2 times from 4.175.114.51 (AS 8075, NL), "
                                "not seen in the 14 days before",
                        evidence={"IPAddress": "4.175.114.51", "Network": "AS 8075 (Microsoft)", "Country": "NL",
                                  "SignIns": 2, "FirstSeen": day + timedelta(hours=2),
                                  "Resources": ["Microsoft Graph", "Azure Key Vault"]},
                        context={"deleted": False, "service_principal_id": principal, "app_id": row["AppId"],
                                 "type": "application"})
    quiet = make_finding("quiet-sp", severity="Low", principal_name="quiet-job", detection="det_b")
    finding_store.upsert_findings([busy, quiet], "run-1", SAMPLE_NOW)
    [stored], _ = finding_store.query_findings(principal=principal)
    return {"busy": stored.id, "name": row["ServicePrincipalName"]}


@pytest.fixture
def site(finding_store, sample_source, tmp_path, monkeypatch) -> Iterator[str]:
    """The app on a free loopback port, served by uvicorn in a thread."""
    monkeypatch.setenv("SUPPRESSIONS_PATH", str(tmp_path))
    app = create_api(lambda: finding_store, api_key=KEY, trail_source=lambda: sample_source)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    started = threading.Event()
    for _ in range(WAIT * 10):
        if server.started:
            started.set()
            break
        started.wait(0.1)
    assert server.started, "uvicorn did not start"
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    server.should_exit = True
    thread.join(WAIT)
    listener.close()


@pytest.fixture
def chrome(tmp_path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def wait_for(driver: webdriver.Chrome, element_id: str):
    """The element, once the page that has it is there; else a failure showing the page the browser has."""
    try:
        return WebDriverWait(driver, WAIT).until(expected_conditions.presence_of_element_located((By.ID, element_id)))
    except TimeoutException:
        raise AssertionError(f"no #{element_id} on {driver.current_url}: {driver.page_source[:2000]}") from None


def sign_in(chrome: webdriver.Chrome) -> None:
    """Fill in the login form the browser shows, as alice, and wait for the findings."""
    wait_for(chrome, "login")
    chrome.find_element(By.ID, "name").send_keys("alice@contoso.com")
    chrome.find_element(By.ID, "key").send_keys(KEY)
    chrome.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    wait_for(chrome, "filters")


def test_an_analyst_signs_in_filters_opens_a_finding_and_acknowledges_it(site, chrome, findings, finding_store,
                                                                          tmp_path):
    chrome.get(f"{site}/api/ui/findings")  # signed out: the login form, then back to the findings
    sign_in(chrome)
    assert chrome.find_element(By.ID, "viewer").text == "alice@contoso.com"
    rows = chrome.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    assert len(rows) == 2

    Select(chrome.find_element(By.ID, "severity")).select_by_visible_text("High")
    chrome.find_element(By.ID, "apply").click()
    WebDriverWait(chrome, WAIT).until(lambda driver: "severity=High" in driver.current_url)
    rows = chrome.find_elements(By.CSS_SELECTOR, "#findings tbody tr")
    assert [row.find_element(By.CSS_SELECTOR, "[data-label=Identity]").text for row in rows] == [findings["name"]]
    chrome.save_screenshot(str(tmp_path / "web-findings.png"))

    rows[0].find_element(By.CSS_SELECTOR, "a").click()
    wait_for(chrome, "triage")
    assert chrome.find_element(By.ID, "status").text == "new"
    trail_rows = chrome.find_elements(By.CSS_SELECTOR, "#trail tbody tr")
    assert any("sign-in to" in row.text for row in trail_rows)

    chrome.find_element(By.ID, "comment").send_keys("asked the owners")
    chrome.find_element(By.ID, "action-acknowledged").click()
    wait_for(chrome, "saved")
    status = chrome.find_element(By.ID, "status").text
    assert status.startswith("acknowledged, by alice@contoso.com at ") and status.endswith(" UTC")
    history = chrome.find_element(By.ID, "history").text
    assert "alice@contoso.com" in history and "new → acknowledged" in history and "asked the owners" in history
    assert not chrome.find_elements(By.ID, "action-acknowledged")  # no button for the status it has
    chrome.save_screenshot(str(tmp_path / "web-finding.png"))

    [stored], _ = finding_store.query_findings(min_severity="High")
    assert (stored.status, stored.triaged_by, stored.comment) == ("acknowledged", "alice@contoso.com",
                                                                  "asked the owners")
    assert [(entry.by, entry.from_, entry.to) for entry in stored.history] == [("alice@contoso.com", "new",
                                                                                 "acknowledged")]


def test_every_page_reads_on_a_375_px_phone_without_sideways_scrolling(site, chrome, findings, finding_store,
                                                                      tmp_path):
    from test_credentials_store import NOW as INVENTORY_NOW
    from test_credentials_store import make_record

    finding_store.replace_inventory([make_record(1, end_days=10, display_name="x" * 120),
                                     make_record(2, end_days=-3, privileged=True,
                                                 privileged_reasons=["Application.ReadWrite.All", "RoleManagement"
                                                                     ".ReadWrite.Directory"])], INVENTORY_NOW)
    chrome.get(f"{site}/api/ui/login")
    sign_in(chrome)
    chrome.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": 375, "height": 800, "deviceScaleFactor": 1, "mobile": True})
    pages = {"findings": ("/api/ui/findings", "findings"),
             "finding": (f"/api/ui/findings/{findings['busy']}", "triage"),
             "credentials": ("/api/ui/credentials", "credentials"),
             "login": ("/api/ui/login", "login")}
    for name, (path, marker) in pages.items():
        chrome.get(site + path)
        wait_for(chrome, marker)
        scroll, inner = chrome.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert inner == 375, name
        assert scroll <= inner, f"{name} scrolls sideways at 375 px: {scroll} px wide"
        chrome.save_screenshot(str(tmp_path / f"web-{name}-375.png"))
