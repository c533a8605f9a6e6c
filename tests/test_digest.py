"""A digest that acts: what changed since the last delivered digest, the trend, links, Informational apart."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes import RecordingNotifier

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.links import SIGN_IN_LOGS, finding_url, parse_base_url
from shared.notify.changes import digest_changes
from shared.notify.email import email_message
from shared.notify.port import Digest, DigestSection
from shared.notify.teams_card import MAX_MESSAGE_BYTES, serialize, teams_message
from shared.store.model import DigestBaseline, FindingState, StoredFinding, Triage

NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
DAY = timedelta(days=1)
BASE = "https://wiaudit-func.azurewebsites.net"
SP, APP, APP_OBJECT = "11111111-2222-4333-8444-555555555555", "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", \
    "99999999-8888-4777-8666-555555555555"


class NoLogs:
    def query(self, kql, start, end):
        return []


class EmptyDirectory:
    def inventory(self):
        from directory_fixtures import make_snapshot

        return make_snapshot(2, seed=1)


def _audit(store, notifier, when: datetime):
    pipeline = AuditPipeline([], NoLogs(), EmptyDirectory(), store, [notifier], clock=lambda: when, checks=[],
                             config=AuditConfig(public_base_url=BASE))
    return pipeline.run(trigger="test")


def _texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") in ("TextBlock", "TextRun") else []
        found += [f"{fact['title']}: {fact['value']}" for fact in node.get("facts", [])]
        return found + [text for value in node.values() for text in _texts(value)]
    if isinstance(node, list):
        return [text for item in node for text in _texts(item)]
    return []


def _urls(message: dict[str, Any]) -> list[str]:
    return re.findall(r'"url":"([^"]*)"', serialize(message).decode())


def test_headline_and_trend_follow_the_delivered_digests_over_several_runs(finding_store, make_finding):
    teams = RecordingNotifier("teams")
    high, medium = make_finding("sp1", severity="High"), make_finding("sp2")
    routine = make_finding("sp3", severity="Informational", detection="det_info")
    finding_store.upsert_findings([high, medium, routine], "day-1", NOW - 4 * DAY)
    _audit(finding_store, teams, NOW - 4 * DAY)
    first = teams.sent[-1]
    assert first.changes.since is None and first.changes.new == {"High": 1, "Medium": 1, "Low": 0, "Informational": 1}
    assert "First digest: 2 new High or Medium." in _texts(teams_message(first))

    finding_store.triage(high.id, Triage(status="resolved", comment="rotated", by="ana@contoso.com"), NOW - 3 * DAY)
    second_high = make_finding("sp4", severity="High")
    finding_store.upsert_findings([second_high], "day-2", NOW - 3 * DAY)
    _audit(finding_store, teams, NOW - 3 * DAY)
    second = teams.sent[-1]
    assert second.changes.model_dump() == {"since": NOW - 4 * DAY, "new": {"High": 1, "Medium": 0, "Low": 0,
                                                                             "Informational": 0},
                                           "reopened": 0, "resolved": 1, "still_open": 2}
    assert ("Since the last digest (2026-03-11 06:00 UTC): 1 new High or Medium, 0 reopened, 1 resolved and "
            "2 still open.") in _texts(teams_message(second))

    # A delivery that fails does not move the baseline: the next digest still counts from the last delivered one.
    teams.failures = 1
    finding_store.triage(high.id, Triage(status="new", comment="fired again", by="ana@contoso.com"), NOW - 2 * DAY)
    finding_store.upsert_findings([make_finding("sp5", severity="Low")], "day-3", NOW - 2 * DAY)
    failed = _audit(finding_store, teams, NOW - 2 * DAY)
    assert "notify:teams" in failed.run.errors and len(teams.sent) == 2
    _audit(finding_store, teams, NOW - DAY)
    third = teams.sent[-1]
    assert third.changes.since == NOW - 3 * DAY
    assert (third.changes.new["Low"], third.changes.reopened, third.changes.resolved, third.changes.still_open) == \
        (1, 1, 0, 3)
    email = email_message(third)
    assert ("Since the last digest (2026-03-12 06:00 UTC): 0 new High or Medium, 1 new Low, 1 reopened, "
            "0 resolved and 3 still open.") in email.text

    # The trend: open findings per run, newest first in the digest, oldest first on the page.
    assert [point.at for point in third.trend] == [NOW - n * DAY for n in (1, 2, 3, 4)]
    assert [point.open["High"] for point in third.trend] == [2, 2, 1, 1]
    assert "Open findings, last 4 runs:" in email.text
    assert "  2026-03-11 06:00  High 1 · Medium 1 · Low 0" in email.text
    assert "  2026-03-14 06:00  High 2 · Medium 1 · Low 1" in email.text
    card = _texts(teams_message(third))
    assert "Open findings, last 4 runs" in card and "2026-03-14 06:00: High 2 · Medium 1 · Low 1" in card


def test_the_trend_keeps_the_last_seven_runs(finding_store, make_finding):
    teams = RecordingNotifier("teams")
    for day in range(9):
        finding_store.upsert_findings([make_finding(f"sp{day}", day=day)], f"r{day}", NOW - (9 - day) * DAY)
        _audit(finding_store, teams, NOW - (9 - day) * DAY)
    trend = teams.sent[-1].trend
    assert len(trend) == 7 and [point.open["Medium"] for point in trend] == [9, 8, 7, 6, 5, 4, 3]


def test_changes_count_from_the_baseline_ids_alone():
    def state(status: str) -> FindingState:
        return FindingState(status=status, severity="Medium")

    states = {"a" * 32: state("new"), "b" * 32: state("acknowledged"), "c" * 32: state("resolved"),
              "d" * 32: state("new")}
    baseline = DigestBaseline(at=NOW - DAY, run_id="r", open_ids=["a" * 16, "c" * 16])
    changes = digest_changes(states, [], baseline)
    assert (changes.reopened, changes.resolved, changes.still_open) == (2, 1, 1)  # b and d were not open then
    incomplete = baseline.model_copy(update={"open_ids": [], "complete": False})
    assert digest_changes(states, [], incomplete).model_dump(exclude={"new", "since"}) == {
        "reopened": 0, "resolved": 0, "still_open": 0}


def test_a_baseline_round_trips_through_the_store(finding_store):
    assert finding_store.last_digest("teams") is None
    ids = [f"{n:032x}"[:16] for n in range(10_000)]  # more than one 64 KiB property holds
    finding_store.record_digest("teams", DigestBaseline(at=NOW, run_id="r1", open_ids=ids))
    assert finding_store.last_digest("teams").open_ids == ids and finding_store.last_digest("email") is None
    too_many = [f"{n:032x}"[:16] for n in range(40_000)]  # more than an entity holds: when, not what
    finding_store.record_digest("teams", DigestBaseline(at=NOW + DAY, run_id="r2", open_ids=too_many))
    kept = finding_store.last_digest("teams")
    assert kept.at == NOW + DAY and kept.open_ids == [] and not kept.complete


def _finding(number: int, severity: str = "High", **overrides: Any) -> StoredFinding:
    fields: dict[str, Any] = {
        "id": f"{number:032x}", "detection_id": "det", "detection_name": f"Detection {number}", "severity": severity,
        "principal_id": SP, "principal_name": f"app-{number}", "entities": {"Account.AadUserId": SP},
        "window_start": NOW - DAY, "window_end": NOW, "summary": f"Finding {number}", "first_detected": NOW,
        "last_detected": NOW,
        "context": {"deleted": False, "service_principal_id": SP, "app_id": APP, "application_object_id": APP_OBJECT,
                    "type": "application"},
    }
    fields.update(overrides)
    return StoredFinding(**fields)


def _digest(findings: list[StoredFinding], base_url: str | None = BASE, **fields: Any) -> Digest:
    return Digest(generated_at=NOW, run_id="r1", findings=findings, findings_query="/api/findings?since=2026-03-14",
                  base_url=base_url, **fields)


def test_each_finding_links_to_the_api_and_the_entra_admin_center():
    digest = _digest([_finding(1), _finding(2, context={"deleted": False, "service_principal_id": SP, "app_id": APP,
                                                        "type": "managed identity"})])
    message = teams_message(digest)
    actions = [action for action in re.findall(r'"title":"([^"]*)","url":"([^"]*)"', serialize(message).decode())]
    finding_one = f"{BASE}/api/findings/{1:032x}"
    assert ("Finding", finding_one) in actions
    assert ("App registration", "https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/ApplicationMenuBlade/"
                                f"~/Overview/appId/{APP}") in actions
    assert ("Enterprise app", "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/"
                              f"objectId/{SP}/appId/{APP}") in actions
    assert ("Managed identity", "https://entra.microsoft.com/#view/Microsoft_AAD_IAM/ManagedAppMenuBlade/~/Overview/"
                                f"objectId/{SP}/appId/{APP}") in actions
    assert [title for title, _ in actions].count("App registration") == 1  # not for the managed identity
    assert ("Sign-in logs", SIGN_IN_LOGS.url) in actions
    assert all('"type":"Action.OpenUrl"' in serialize(block).decode()
               for block in message["attachments"][0]["content"]["body"] if block["type"] == "ActionSet")

    email = email_message(digest)
    assert f'href="{finding_one}"' in email.html and f"   Finding: {finding_one}" in email.text
    assert "href=\"https://entra.microsoft.com/#view/Microsoft_AAD_RegisteredApps/" in email.html


def test_without_public_base_url_no_api_link_is_given_and_the_path_is_named():
    digest = _digest([_finding(n) for n in range(30)], base_url=None)
    message = teams_message(digest)
    assert not [url for url in _urls(message) if "/api/" in url]
    assert all(url.startswith("https://entra.microsoft.com/") for url in _urls(message))
    assert "GET /api/findings?since=2026-03-14" in _texts(message)
    email = email_message(digest, max_findings=10)
    assert "/api/findings/" not in email.html and "Fetch them all: GET /api/findings?since=2026-03-14" in email.text

    with_base = teams_message(_digest([_finding(n) for n in range(30)]))
    assert f"{BASE}/api/findings?since=2026-03-14" in _urls(with_base)  # "All findings" button, not a path


def test_a_deleted_or_foreign_principal_gets_only_the_links_that_exist():
    deleted = _finding(1, context={"deleted": True, "looked_up": SP})
    foreign = _finding(2, context={"deleted": False, "service_principal_id": SP, "app_id": APP,
                                   "application_object_id": None, "type": "application"})
    urls = _urls(teams_message(_digest([deleted, foreign], base_url=None)))
    assert not any("RegisteredApps" in url for url in urls)  # no app registration in this tenant for either
    assert sum("ManagedAppMenuBlade" in url for url in urls) == 1


def test_public_base_url_is_checked():
    assert parse_base_url("https://wiaudit.contoso.com/") == "https://wiaudit.contoso.com"
    assert parse_base_url("http://127.0.0.1:7071") == "http://127.0.0.1:7071"
    for bad in ("wiaudit.contoso.com", "http://wiaudit.contoso.com", "https://x.example/?a=1", "ftp://x.example"):
        with pytest.raises(ValueError):
            parse_base_url(bad)
    assert finding_url(None, "abc") is None and finding_url(BASE + "/", "a/b") == f"{BASE}/api/findings/a%2Fb"


def test_informational_findings_are_counted_apart_and_collapsed():
    routine = [_finding(n, severity="Informational", detection_name="Unused credential") for n in range(12)]
    routine += [_finding(20 + n, severity="Informational", detection_name="Dormant identity") for n in range(7)]
    digest = _digest([_finding(1), _finding(2, severity="Medium"), *routine])
    card = teams_message(digest)
    body = card["attachments"][0]["content"]["body"]
    listed = [block for block in body if block["type"] == "Container" and "Informational" not in str(block)]
    assert len([b for b in listed if "Detection" in str(b)]) == 2
    line = "19 Informational findings, not listed: 12 Unused credential and 7 Dormant identity."
    assert line in _texts(card)
    email = email_message(digest)
    assert line in email.text and line in email.html and "2 findings to review." in email.text
    assert email.html.count('<div style="border-top') == 2


def test_extra_sections_render_after_the_findings_in_both_channels():
    section = DigestSection(title="Expired suppressions", lines=["sup-1 ended 2026-03-10: it matches again"],
                            severity="Medium")
    digest = _digest([_finding(1)], sections=[section])
    texts = _texts(teams_message(digest))
    assert texts.index("Expired suppressions") > texts.index("Detection 1")
    email = email_message(digest)
    assert "Expired suppressions" in email.html and "  sup-1 ended 2026-03-10: it matches again" in email.text


def test_a_card_with_buttons_on_every_finding_stays_under_the_size_cap():
    digest = _digest([_finding(n, summary="x" * 400, principal_name="p" * 120) for n in range(60)])
    message = teams_message(digest, max_findings=60)
    assert len(serialize(message)) <= MAX_MESSAGE_BYTES
    assert "left out to keep this message under the Teams size limit" in " ".join(_texts(message))


def test_the_cli_shows_the_digests_hygiene_numbers(finding_store, make_finding, monkeypatch):
    from contextlib import contextmanager

    from directory_fixtures import make_snapshot
    from typer.testing import CliRunner

    from shared.cli import app
    from shared.posture.hygiene import hygiene_counts

    class Directory:
        def inventory(self):
            return make_snapshot(30, seed=3)

    teams = RecordingNotifier("teams")
    finding_store.upsert_findings([make_finding("sp1")], "earlier", NOW - DAY)
    AuditPipeline([], NoLogs(), Directory(), finding_store, [teams], clock=lambda: NOW, checks=[]).run()
    hygiene = teams.sent[0].hygiene
    assert hygiene.managed_by_azure > 0 and hygiene.credentials == len(finding_store.all_credentials())

    @contextmanager
    def the_test_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", the_test_store)
    output = CliRunner(env={"COLUMNS": "300"}).invoke(app, ["credentials", "--privileged"]).stdout
    counts = ", ".join(f"{title} {count:,}" for title, count in hygiene_counts(hygiene))
    assert f"Hygiene of all {hygiene.credentials} credentials (as in the digest): {counts}" in " ".join(output.split())


def test_a_principal_without_a_name_shows_its_id_shortened_only_beside_its_link():
    linked = _finding(1, principal_name="")
    unlinked = _finding(2, principal_name="", context=None)
    texts = _texts(teams_message(_digest([linked, unlinked], base_url=None)))
    assert "11111111… (application)" in texts and SP in texts
