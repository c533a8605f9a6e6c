"""The digest renderings: the Teams Workflows message (Adaptive Card 1.4) and the email (HTML and text).

Also the digest/finding builders the other test_notify_* modules import.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.links import SIGN_IN_LOGS
from shared.notify.email import email_message
from shared.notify.port import Digest
from shared.notify.teams_card import MAX_MESSAGE_BYTES, serialize, teams_message
from shared.store.model import StoredFinding
from shared.text import safe_text

T0 = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
QUERY = "/api/findings?since=2024-04-30T06:00:00Z"
EVIL_NAME = "<script>alert(1)</script> [click](http://evil.example/x) **urgent**"


def stored_finding(number: int = 1, *, severity: str = "Medium", day: int = 0, **overrides: Any) -> StoredFinding:
    start = T0 + timedelta(days=day)
    fields: dict[str, Any] = {
        "id": f"f{number:05d}", "detection_id": f"det_{number % 7}", "detection_name": f"Detection {number % 7}",
        "severity": severity, "principal_id": f"00000000-0000-0000-0000-{number:012d}",
        "principal_name": f"app-{number}", "entities": {"Account.AadUserId": f"sp{number}"},
        "window_start": start, "window_end": start + timedelta(days=1),
        "summary": f"Why finding {number} matters.", "first_detected": start + timedelta(days=1),
        "last_detected": start + timedelta(days=1),
    }
    fields.update(overrides)
    return StoredFinding(**fields)


def make_digest(findings: list[StoredFinding], run_id: str = "run-20240502") -> Digest:
    return Digest(generated_at=datetime(2024, 5, 2, 6, 30, tzinfo=UTC), run_id=run_id, findings=findings,
                  findings_query=QUERY)


def small_digest() -> Digest:
    return make_digest([
        stored_finding(1, severity="Low", principal_name="backup-sync"),
        stored_finding(2, severity="High", detection_name="Secret added to a privileged app",
                       principal_name="payroll-api", context={"type": "Application", "owners": []}, occurrences=3,
                       summary="A new client secret on an app that holds Application.ReadWrite.All."),
    ])


def _texts(node: Any, path: str = "") -> list[tuple[str, str]]:
    """(element type, text) of every text-bearing element of a card."""
    found = []
    if isinstance(node, dict):
        kind = node.get("type", "")
        if kind in ("TextBlock", "TextRun"):
            found.append((kind, node["text"]))
        for fact in node.get("facts", []):
            found += [("Fact", fact["title"]), ("Fact", fact["value"])]
        for value in node.values():
            found += _texts(value)
    elif isinstance(node, list):
        for item in node:
            found += _texts(item)
    return found


def test_card_of_a_small_digest_is_exactly_the_workflows_message() -> None:
    assert teams_message(small_digest()) == {
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": [
                    {"type": "TextBlock", "text": "Workload identity audit — 2024-05-02", "size": "Large",
                     "weight": "Bolder", "wrap": True},
                    {"type": "RichTextBlock", "spacing": "Small", "inlines": [
                        {"type": "TextRun", "text": "2 findings to review.", "weight": "Bolder"}]},
                    {"type": "RichTextBlock", "spacing": "None", "inlines": [
                        {"type": "TextRun", "text": "Run run-20240502 at 2024-05-02 06:30 UTC", "isSubtle": True}]},
                    {"type": "FactSet", "facts": [
                        {"title": "High", "value": "1"}, {"title": "Medium", "value": "0"},
                        {"title": "Low", "value": "1"}, {"title": "Informational", "value": "0"}]},
                    {"type": "Container", "separator": True, "spacing": "Medium", "items": [
                        {"type": "RichTextBlock", "inlines": [
                            {"type": "TextRun", "text": "High", "weight": "Bolder", "color": "Attention"},
                            {"type": "TextRun", "text": " · "},
                            {"type": "TextRun", "text": "Secret added to a privileged app", "weight": "Bolder"}]},
                        {"type": "RichTextBlock", "spacing": "None", "inlines": [
                            {"type": "TextRun", "text": "Principal: ", "isSubtle": True},
                            {"type": "TextRun", "text": "payroll-api (Application)"}]},
                        {"type": "RichTextBlock", "spacing": "Small", "inlines": [
                            {"type": "TextRun",
                             "text": "A new client secret on an app that holds Application.ReadWrite.All."}]},
                        {"type": "RichTextBlock", "spacing": "Small", "inlines": [
                            {"type": "TextRun", "text": "2024-05-01 06:00 → 2024-05-02 06:00 UTC · seen in 3 windows",
                             "isSubtle": True, "size": "Small"}]},
                    ]},
                    {"type": "Container", "separator": True, "spacing": "Medium", "items": [
                        {"type": "RichTextBlock", "inlines": [
                            {"type": "TextRun", "text": "Low", "weight": "Bolder", "color": "Accent"},
                            {"type": "TextRun", "text": " · "},
                            {"type": "TextRun", "text": "Detection 1", "weight": "Bolder"}]},
                        {"type": "RichTextBlock", "spacing": "None", "inlines": [
                            {"type": "TextRun", "text": "Principal: ", "isSubtle": True},
                            {"type": "TextRun", "text": "backup-sync"}]},
                        {"type": "RichTextBlock", "spacing": "Small", "inlines": [
                            {"type": "TextRun", "text": "Why finding 1 matters."}]},
                        {"type": "RichTextBlock", "spacing": "Small", "inlines": [
                            {"type": "TextRun", "text": "2024-05-01 06:00 → 2024-05-02 06:00 UTC", "isSubtle": True,
                             "size": "Small"}]},
                    ]},
                    {"type": "ActionSet", "spacing": "Small", "actions": [
                        {"type": "Action.OpenUrl", "title": "Sign-in logs",
                         "url": "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/SignInEventsV3Blade/"
                                "timeRangeType/last7days/showApplicationSignIns~/true"}]},
                ],
            },
        }],
    }


def test_card_lists_the_top_findings_and_says_how_to_fetch_the_rest() -> None:
    findings = [stored_finding(n, severity="Medium", day=n % 5) for n in range(25)]
    findings.append(stored_finding(99, severity="High"))
    message = teams_message(make_digest(findings))
    body = message["attachments"][0]["content"]["body"]
    containers = [element for element in body if element["type"] == "Container"]
    assert len(containers) == 20
    assert containers[0]["items"][0]["inlines"][0]["text"] == "High"  # most severe first
    texts = [text for _, text in _texts(body)]
    assert "6 more findings not listed here." in texts
    assert f"GET {QUERY}" in texts
    assert not any("left out" in text for text in texts)  # nothing was dropped for size


def test_card_with_2000_findings_stays_under_28_kb_and_says_how_many_were_left_out() -> None:
    long = "Why it matters: " + "a credential was used from an unexpected network. " * 30
    findings = [stored_finding(n, severity=("High", "Medium", "Low")[n % 3], summary=long,
                               principal_name="p" * 300, detection_name="d" * 300) for n in range(2000)]
    digest = make_digest(findings)
    message = teams_message(digest, max_findings=2000)
    size = len(serialize(message))
    assert size <= MAX_MESSAGE_BYTES < 28 * 1024
    body = message["attachments"][0]["content"]["body"]
    shown = sum(1 for element in body if element["type"] == "Container")
    assert 0 < shown < 2000
    texts = [text for _, text in _texts(body)]
    expected = (f"{2000 - shown:,} more findings not listed here ({2000 - shown:,} left out to keep this message "
                "under the Teams size limit).")
    assert expected in texts
    assert max(len(text) for text in texts) <= 400  # long text truncated
    assert any(text.endswith("…") for text in texts)
    assert size > MAX_MESSAGE_BYTES - 3000  # it filled the room it had rather than dropping too many

    default = teams_message(digest)  # the default list of 20 fits too, and only says "more"
    assert len(serialize(default)) <= MAX_MESSAGE_BYTES
    assert sum(1 for element in default["attachments"][0]["content"]["body"] if element["type"] == "Container") <= 20


def test_card_and_email_neutralise_a_malicious_display_name() -> None:
    evil_name = EVIL_NAME + "\nFAKE LINE \u202egnp.exe {{DATE(2017-02-14T06:08:00Z)}}"
    evil = stored_finding(1, severity="High", principal_name=evil_name,
                          summary="See [docs](https://evil.example/login) now", detection_name="Detection <b>x</b>")
    digest = make_digest([evil])

    message = teams_message(digest)
    texts = _texts(message)
    # Attacker text only in TextRuns (plain text by the Adaptive Card schema), never in markdown-rendering elements.
    for kind, text in texts:
        if kind != "TextRun":
            assert "evil" not in text and "script" not in text and "[" not in text, (kind, text)
    principal = next(text for kind, text in texts if kind == "TextRun" and "script" in text)
    assert principal == ("<script>alert(1)</script> [click](http[:]//evil.example/x) **urgent** FAKE LINE gnp.exe "
                         "{ {DATE(2017-02-14T06:08:00Z)}}")
    serialized = serialize(message).decode().replace('"$schema":"http://adaptivecards.io/schemas/', "")
    assert re.findall(r"https?://[^\"]*", serialized) == [SIGN_IN_LOGS.url]  # only the button the digest adds
    assert "\u202e" not in serialized and "\\n" not in serialized

    email = email_message(digest)
    assert "<script>" not in email.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<b>x</b>" not in email.html and "Detection &lt;b&gt;x&lt;/b&gt;" in email.html
    assert re.findall(r"https?://[^\"]*", email.html) == [SIGN_IN_LOGS.url]
    assert "[click](http[:]//evil.example/x)" in email.html
    assert "\u202e" not in email.html + email.text
    assert "http://" not in email.text and "https[:]//evil.example/login" in email.text
    assert "evil" not in email.subject and "script" not in email.subject
    assert "FAKE LINE" in email.text and "\nFAKE LINE" not in email.text  # no forged line in the text part


def test_safe_text_defangs_collapses_and_caps() -> None:
    assert safe_text("a\r\nb\tc  d", 100) == "a b c d"
    assert safe_text("see HTTPS://x.example and ftp://y", 100) == "see HTTPS[:]//x.example and ftp[:]//y"
    assert safe_text("x" * 50, 10) == "x" * 9 + "…"
    assert safe_text(None, 10) == ""


def test_email_has_the_card_content_as_html_and_text() -> None:
    findings = [stored_finding(n, severity="Medium") for n in range(3)]
    findings.append(stored_finding(9, severity="High", principal_name="payroll-api", context={"type": "Application"},
                                   summary="A secret on a privileged app."))
    email = email_message(make_digest(findings), max_findings=2)
    assert email.subject == "Workload identity audit 2024-05-02: 4 findings (1 High, 3 Medium)"
    html = email.html
    assert html.startswith("<!DOCTYPE html>") and "<title>Workload identity audit 2024-05-02: 4 findings" in html
    assert re.search(r">High</th><td[^>]*>1</td>", html) and re.search(r">Medium</th><td[^>]*>3</td>", html)
    assert "<table" not in html.split("To review")[1]  # one column: a finding is a block of lines, not a table row
    assert html.count('<div style="border-top') == 2
    assert "> payroll-api (Application)</div><div>A secret on a privileged app.</div>" in html
    assert "2 more findings not listed here." in html and f"<code>GET {QUERY}</code>" in html
    assert email.text == (
        "Workload identity audit — 2024-05-02\n"
        "4 findings to review.\n"
        "Run run-20240502 at 2024-05-02 06:30 UTC\n"
        "\n"
        "  High           1\n"
        "  Medium         3\n"
        "  Low            0\n"
        "  Informational  0\n"
        "\n"
        "1. High · Detection 2\n"
        "   Principal: payroll-api (Application)\n"
        "   Why it matters: A secret on a privileged app.\n"
        "   Window: 2024-05-01 06:00 → 2024-05-02 06:00 UTC\n"
        "\n"
        "2. Medium · Detection 0\n"
        "   Principal: app-0\n"
        "   Why it matters: Why finding 0 matters.\n"
        "   Window: 2024-05-01 06:00 → 2024-05-02 06:00 UTC\n"
        "\n"
        "2 more findings not listed here.\n"
        f"Fetch them all: GET {QUERY}\n"
    )


def test_empty_digest_renders() -> None:
    digest = make_digest([])
    texts = [text for _, text in _texts(teams_message(digest))]
    assert "No findings in this digest." in texts
    email = email_message(digest)
    assert email.subject == "Workload identity audit 2024-05-02: 0 findings"
    assert "No findings in this digest." in email.html and "No findings in this digest." in email.text


def test_card_is_valid_json_with_unicode_kept() -> None:
    digest = make_digest([stored_finding(1, principal_name="Zahlungsdienst-Ü")])
    assert json.loads(serialize(teams_message(digest))) == teams_message(digest)
    assert "Zahlungsdienst-Ü".encode() in serialize(teams_message(digest))
