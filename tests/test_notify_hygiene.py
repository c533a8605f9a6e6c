"""The digest's credential hygiene section: the groups credential_hygiene computes and their rendering."""

from __future__ import annotations

import json
from datetime import timedelta

from test_credentials_store import NOW, make_record
from test_notify_render import EVIL_NAME, _texts, make_digest, small_digest, stored_finding

from shared.notify.email import email_message
from shared.notify.teams_card import MAX_MESSAGE_BYTES, serialize, teams_message
from shared.posture.hygiene import CredentialHygiene, HygieneThresholds, credential_hygiene


def sample_hygiene() -> CredentialHygiene:
    records = [
        make_record(1, end_days=10, used_days_ago=1),                              # expiring, in use
        make_record(2, end_days=10, used_days_ago=None),                           # expiring, unused: not in use
        make_record(3, end_days=-5, used_days_ago=20),                             # expired
        make_record(4, end_days=60, used_days_ago=120),                            # unused
        make_record(5, end_days=60, used_days_ago=None, usage_known=False),        # usage unknown: not unused
        make_record(6, end_days=None, used_days_ago=1),                            # no end date: over-long
        make_record(7, end_days=300, used_days_ago=1, start=NOW - timedelta(days=10)),  # 310-day secret
        make_record(8, end_days=300, used_days_ago=1, type="certificate", start=NOW - timedelta(days=10)),  # ok
        make_record(9, end_days=None, used_days_ago=1, type="federated"),          # federated: never over-long
        make_record(10, end_days=5, used_days_ago=3, privileged=True),             # privileged: listed first
    ]
    return credential_hygiene(records, NOW)


def names(group) -> list[str]:
    return [record.principal_name for record in group.top]


def test_groups_follow_the_thresholds():
    hygiene = sample_hygiene()
    assert names(hygiene.expiring_in_use) == ["app-10", "app-1"]
    assert names(hygiene.expired) == ["app-3"]
    assert names(hygiene.unused) == ["app-2", "app-4"]
    # app-1..5 and 10 were valid 200+ days; 6 has no end; 7 is a 310-day secret; the certificate and federated pass
    assert hygiene.over_long.count == 8  # app-1..5 and 10, 6 and 7
    # privileged, then unbounded, then the longest lifetime: 310 days, then the 260-day ones by name
    assert names(hygiene.over_long) == ["app-10", "app-6", "app-7", "app-4", "app-5"]
    assert hygiene.credentials == 10 and hygiene.expiring_within_days == 30 and hygiene.unused_days == 30


def test_top_is_capped_and_counts_are_not():
    records = [make_record(n, end_days=-n) for n in range(1, 30)]
    hygiene = credential_hygiene(records, NOW, HygieneThresholds(top=3))
    assert hygiene.expired.count == 29 and len(hygiene.expired.top) == 3


def test_card_has_the_hygiene_section_after_the_findings():
    digest = small_digest().model_copy(update={"hygiene": sample_hygiene()})
    body = teams_message(digest)["attachments"][0]["content"]["body"]
    texts = [text for _, text in _texts(body)]
    assert texts.index("Credential hygiene") > texts.index("Detection 1")
    assert "10 credentials in the inventory of 2026-03-08 06:00 UTC" in texts
    facts = {fact["title"]: fact["value"] for block in body for item in block.get("items", [])
             if item["type"] == "FactSet" for fact in item["facts"]}
    assert facts == {"Expiring and in use": "2", "Expired": "1", "Unused": "2", "Usage unknown": "1",
                     "Over-long lifetime": "8", "Managed by Azure": "0"}
    assert "app-10 (tier 0)" in texts
    assert 'secret "secret 1" (30000000-0000-0000-0000-000000000001)' in texts
    assert "ends 2026-03-18 (in 10 days) · last used 2026-03-07" in texts
    assert "3 more not listed." in texts  # over-long: 8, five shown
    assert "wiaudit credentials" in texts  # no PUBLIC_BASE_URL: no link, the command instead


def test_a_digest_without_hygiene_renders_as_before():
    digest = small_digest()
    assert digest.hygiene is None
    assert "Credential hygiene" not in json.dumps(teams_message(digest))
    assert "Credential hygiene" not in email_message(digest).html


def test_card_and_email_neutralise_malicious_credential_text():
    evil = make_record(1, end_days=-1, principal_name=EVIL_NAME, display_name=EVIL_NAME + "\u202e\nline")
    digest = small_digest().model_copy(update={"hygiene": credential_hygiene([evil], NOW)})
    for kind, text in _texts(teams_message(digest)["attachments"][0]["content"]["body"]):
        if "script" in text:
            assert kind == "TextRun"  # plain text, never markdown
            assert "http://" not in text and "\u202e" not in text and "\n" not in text
    email = email_message(digest)
    assert "<script>" not in email.html and "&lt;script&gt;" in email.html
    assert "http://evil" not in email.html and "http[:]//evil" in email.html
    assert "\u202e" not in email.text and "http://evil" not in email.text


def test_email_has_the_hygiene_section_in_html_and_text():
    digest = small_digest().model_copy(update={"hygiene": sample_hygiene()})
    email = email_message(digest)
    for part in (email.html, email.text):
        assert "Credential hygiene" in part
        assert "Expiring and in use" in part and "Over-long lifetime" in part
        assert "app-10 (tier 0)" in part
        assert "3 more not listed." in part
    assert email.html.index("Credential hygiene") > email.html.index("Detection 1")
    assert email.subject == email_message(small_digest()).subject


def test_size_cap_holds_with_2000_findings_and_a_long_hygiene_section():
    long = "Why it matters: " + "a credential was used from an unexpected network. " * 30
    findings = [stored_finding(n, summary=long, principal_name="p" * 300, detection_name="d" * 300)
                for n in range(2000)]
    records = [make_record(n, end_days=-n, principal_name="n" * 500, display_name="x" * 500) for n in range(1, 500)]
    digest = make_digest(findings).model_copy(update={"hygiene": credential_hygiene(records, NOW)})
    message = teams_message(digest)
    assert len(serialize(message)) <= MAX_MESSAGE_BYTES
    texts = [text for _, text in _texts(message)]
    assert "Credential hygiene" in texts and "494 more not listed." in texts


def test_hygiene_shrinks_before_the_last_finding_is_dropped():
    digest = make_digest([stored_finding(1)]).model_copy(update={"hygiene": sample_hygiene()})
    full = len(serialize(teams_message(digest)))
    budget = full - 200  # too small for the whole section
    message = teams_message(digest, max_bytes=budget)
    assert len(serialize(message)) <= budget
    texts = [text for _, text in _texts(message)]
    assert "Detection 1" in texts  # the finding stayed
    assert "Credential hygiene" in texts and "Over-long lifetime" in texts  # the counts stayed
    assert "5 more not listed." in texts  # over-long: three of eight listed instead of five


def test_managed_identities_own_certificates_are_left_out():
    managed = make_record(1, end_days=-1, used_days_ago=None, principal_type="managed identity", type="certificate")
    hygiene = credential_hygiene([managed, make_record(2, end_days=-1)], NOW)
    assert hygiene.credentials == 2 and hygiene.managed_by_azure == 1  # counted, as `wiaudit credentials` lists it
    assert names(hygiene.expired) == ["app-2"] and hygiene.unused.count == 0  # but in no group


def test_a_federated_credential_on_a_user_assigned_identity_is_someones_not_azures():
    managed = make_record(1, end_days=None, used_days_ago=None, principal_type="managed identity", type="federated",
                          held_on="servicePrincipal", start=None, lifetime_days=None)
    certificate = make_record(2, end_days=50, principal_type="managed identity", type="certificate")
    hygiene = credential_hygiene([managed, certificate], NOW)
    assert hygiene.credentials == 2 and hygiene.managed_by_azure == 1
    assert names(hygiene.unused) == ["app-1"]  # never used, and the logs reach back: an owner should look
