"""The digest email in a real browser (Debian's chromium, headless): one column that never scrolls sideways.

Chrome will not make a window narrower than about 500 px, so the email is shown in an iframe of exactly
the width under test (a phone's 375 px, a desktop's 1000 px), through `srcdoc` so the page around it may
measure the frame's document. Each width is also screenshotted into the test's temporary folder, for a
person to look at (docs/digest-email-375.png in the README is one of them).
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

import pytest

from shared.notify.changes import DigestChanges, TrendPoint
from shared.notify.email import email_message
from shared.notify.port import Digest
from shared.posture.hygiene import credential_hygiene
from shared.store.model import StoredFinding

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
WIDTHS = (375, 1000)



@pytest.fixture(autouse=True)
def chromium() -> None:
    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (apt-get install -y chromium)"


def _long_digest() -> Digest:
    from test_credentials_store import make_record

    long_id = "3f2a9c1e-0000-4000-8000-000000000001"
    findings = []
    for number, severity in enumerate(("High", "High", "Medium", "Medium", "Low", "Informational"), 1):
        findings.append(StoredFinding(
            id=f"{number:032x}", detection_id="det", detection_name="Credential added to an identity, then a "
            "sign-in from a new network within the hour", severity=severity, principal_id=long_id,
            principal_name="payroll-sync-" + "x" * 60 + "-with-a-name-nobody-can-wrap", entities={},
            window_start=NOW - timedelta(days=1), window_end=NOW, occurrences=3,
            summary=("alice@contoso.com added client secret " + "k" * 90 + " to payroll-sync, which signed in "
                     "2 times from 4.175.114.51, 4.175.114.52 and 4.175.114.53 not seen before"),
            first_detected=NOW, last_detected=NOW,
            context={"deleted": False, "service_principal_id": long_id, "app_id": long_id,
                     "application_object_id": long_id, "type": "application"}))
    records = [make_record(n, end_days=days, used_days_ago=used) for n, (days, used) in
               enumerate([(10, 1), (-3, 40), (60, None), (300, 1)], 1)]
    trend = [TrendPoint(run_id=f"r{n}", at=NOW - timedelta(days=n), open={"High": 2 + n, "Medium": 14, "Low": 3,
                                                                           "Informational": 19}) for n in range(7)]
    return Digest(generated_at=NOW, run_id="20260315T060000Z-5bafa8", findings=findings,
                  findings_query="/api/findings?since=2026-03-14T06:00:00Z",
                  base_url="https://wiaudit-func.azurewebsites.net", trend=trend,
                  changes=DigestChanges(since=NOW - timedelta(days=1), new={"High": 2, "Medium": 1, "Low": 1},
                                        reopened=1, resolved=4, still_open=20),
                  hygiene=credential_hygiene(records, NOW))


def _render(html: str, width: int, folder: Path) -> tuple[dict[str, int], Path]:
    """The email in an iframe `width` px wide: its measurements (via --dump-dom) and a screenshot."""
    measure = ("<script>window.onload = () => { const frame = document.getElementById('email').contentWindow;"
               "const out = document.createElement('pre'); out.id = 'measure'; out.textContent = JSON.stringify("
               "{scroll: frame.document.documentElement.scrollWidth, inner: frame.innerWidth});"
               "document.body.appendChild(out); };</script>")
    page = folder / f"email-{width}.html"
    height = 2400
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0"><iframe id="email" width="{width}" '
                    f'height="{height}" style="border:0;display:block" srcdoc="{escape(html, quote=True)}"></iframe>'
                    f"{measure}</body></html>", encoding="utf-8")
    run = [str(CHROMIUM), *FLAGS, f"--user-data-dir={folder / f'profile-{width}'}",
           f"--window-size={max(width, 500)},{height}"]
    dom = subprocess.run([*run, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180, check=True)
    found = re.search(r'<pre id="measure">(.*?)</pre>', dom.stdout)
    assert found, f"chromium printed no measurement: {dom.stdout[-500:]} {dom.stderr[-500:]}"
    screenshot = folder / f"digest-email-{width}.png"
    subprocess.run([*run, f"--screenshot={screenshot}", page.as_uri()], capture_output=True, timeout=180, check=True)
    return json.loads(found.group(1)), screenshot


@pytest.mark.parametrize("width", WIDTHS)
def test_the_email_is_one_column_without_sideways_scrolling(width: int, tmp_path: Path) -> None:
    email = email_message(_long_digest())
    measured, screenshot = _render(email.html, width, tmp_path)
    assert measured["inner"] == width
    assert measured["scroll"] <= measured["inner"], measured
    assert screenshot.stat().st_size > 10_000  # a real picture of the page, for a person to look at


def test_a_wide_table_would_have_been_caught(tmp_path: Path) -> None:
    """The measurement can fail: the old five-column table with an unbreakable window column scrolls at 375 px."""
    html = ('<table style="width:100%"><tr>' + "".join(f'<td style="white-space:nowrap">column {n} '
                                                       '2026-03-14 06:00 → 2026-03-15 06:00 UTC</td>'
                                                       for n in range(5)) + "</tr></table>")
    measured, _ = _render(html, 375, tmp_path)
    assert measured["scroll"] > measured["inner"]
