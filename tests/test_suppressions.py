"""Suppressions as code: the file schema and its errors, what a suppression matches, and its expiry."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shared.catalog.loader import rule_names
from shared.suppressions.load import SuppressionError, load_suppressions

TODAY = date(2026, 3, 15)
NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
NEW_NETWORK = "workload_signin_new_network"
RULES = rule_names()
NEW_NETWORK_ID = next(rule.id for rule in RULES if NEW_NETWORK in rule.names)

VALID = f"""\
detections: [{NEW_NETWORK}]
match:
  principal: build-agent
  ip: [203.0.113.0/24, 198.51.100.7]
reason: The partner's build agents sign in from their own range
owner: alice@contoso.com
until: 2026-06-30
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path):
    return load_suppressions(folder, RULES, TODAY)


@pytest.fixture
def one(tmp_path: Path):
    write(tmp_path, "partner-range", VALID)
    return load(tmp_path)


def network_finding(make_finding, ips=("203.0.113.9",), principal="sp-build", name="build-agent", **evidence):
    return make_finding(principal=principal, detection=NEW_NETWORK_ID, principal_name=name,
                        entities={"Account.AadUserId": principal, "IP.Address": ips[0]},
                        evidence={"ServicePrincipalId": principal, "IPAddress": ips[0], "IPAddresses": list(ips),
                                  **evidence})


def test_a_valid_file_loads_with_its_detection_resolved_and_its_file_name_as_id(one):
    [suppression] = one
    assert suppression.id == "partner-range"
    assert suppression.detection_ids == {NEW_NETWORK_ID}
    assert suppression.match.ip == ("203.0.113.0/24", "198.51.100.7")


def test_it_silences_exactly_what_it_matches(one, make_finding):
    matched = network_finding(make_finding)
    other_ip = network_finding(make_finding, ips=("203.0.113.9", "185.220.101.47"))
    other_principal = network_finding(make_finding, principal="sp-payroll", name="payroll-sync")
    other_detection = make_finding(principal="sp-build", principal_name="build-agent", detection="det_other",
                                   entities={"IP.Address": "203.0.113.9"}, evidence={"IPAddress": "203.0.113.9"})
    no_ip = network_finding(make_finding, ips=("",))
    marked = one.apply([matched, other_ip, other_principal, other_detection, no_ip], NOW)
    assert [f.suppression.id if f.suppression else None for f in marked] == ["partner-range", None, None, None, None]
    assert marked[0].suppression.reason == "The partner's build agents sign in from their own range"


def test_principal_matches_by_any_of_its_names(tmp_path, make_finding):
    write(tmp_path, "by-app-id", VALID.replace("principal: build-agent", "principal: 11111111-2222-3333-4444-5555"))
    suppressions = load(tmp_path)
    by_app_id = network_finding(make_finding, AppId="11111111-2222-3333-4444-5555")
    by_context = network_finding(make_finding).model_copy(
        update={"context": {"app_id": "11111111-2222-3333-4444-5555"}})
    assert all(f.suppression for f in suppressions.apply([by_app_id, by_context], NOW))
    assert not suppressions.apply([network_finding(make_finding)], NOW)[0].suppression


def test_asn_country_actor_and_resource_keys(tmp_path, make_finding):
    write(tmp_path, "net", f"detections: [{NEW_NETWORK}]\nmatch: {{asn: 8075, country: [nl, DE]}}\n"
                           "reason: r\nowner: o\nuntil: 2026-04-01\n")
    write(tmp_path, "vault", "detections: [mi_keyvault_secret_reads]\nmatch: {resource: KV-CHECKOUT}\n"
                             "reason: r\nowner: o\nuntil: 2026-04-01\n")
    write(tmp_path, "admin", "detections: [new_credential_added]\nmatch: {actor: ops@contoso.com}\n"
                             "reason: r\nowner: o\nuntil: 2026-04-01\n")
    suppressions = load(tmp_path)
    known = network_finding(make_finding, NewValues=["IP 203.0.113.9", "ASN 8075", "Country NL"], Countries=["NL"])
    new_asn = network_finding(make_finding, NewValues=["ASN 208323", "Country DE"], Countries=["DE"])
    ids = {rule.names[1]: rule.id for rule in RULES}
    vault = make_finding(detection=ids["mi_keyvault_secret_reads"], evidence={"Vaults": ["kv-checkout"]})
    vault_and_more = make_finding(detection=ids["mi_keyvault_secret_reads"],
                                  evidence={"Vaults": ["KV-CHECKOUT", "KV-FINANCE"]})
    admin = make_finding(detection=ids["new_credential_added"], evidence={"Actor": "ops@contoso.com"})
    stranger = make_finding(detection=ids["new_credential_added"], evidence={"Actor": "mallory@contoso.com"})
    marked = suppressions.apply([known, new_asn, vault, vault_and_more, admin, stranger], NOW)
    assert [f.suppression.id if f.suppression else None for f in marked] == ["net", None, "vault", None, "admin",
                                                                                None]


def test_it_expires_after_its_until_day(one, make_finding):
    finding = network_finding(make_finding)
    [suppression] = one
    assert one.apply([finding], datetime(2026, 6, 30, 23, 59, tzinfo=UTC))[0].suppression
    assert one.apply([finding], datetime(2026, 7, 1, tzinfo=UTC))[0].suppression is None
    assert one.expired(datetime(2026, 7, 1, tzinfo=UTC)) == [suppression]
    assert one.expired(NOW) == []


def test_no_folder_or_an_empty_one_means_no_suppressions(tmp_path):
    assert len(load(tmp_path / "absent")) == 0
    assert len(load(tmp_path)) == 0


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda t: t.replace("until: 2026-06-30\n", ""), "until", "Field required"),
    (lambda t: t.replace("2026-06-30", "2027-03-16"), "until", "more than a year ahead"),
    (lambda t: t + "sevrity: High\n", "sevrity", "Extra inputs are not permitted"),
    (lambda t: t.replace("  principal: build-agent\n", "  principal: build-agent\n  pricipal: x\n"),
     "match.pricipal", "Extra inputs are not permitted"),
    (lambda t: t.replace("198.51.100.7", "198.51.100.300"), "match.ip", "not an IP address or CIDR range"),
    (lambda t: t.replace(NEW_NETWORK, "payroll_rule"), "detections.0", "unknown detection payroll_rule"),
    (lambda t: t.replace(NEW_NETWORK, "expir"), "detections.0", "ambiguous detection expir"),
    (lambda t: t.replace("owner: alice@contoso.com\n", ""), "owner", "Field required"),
    (lambda t: t.replace("  principal: build-agent\n  ip: [203.0.113.0/24, 198.51.100.7]\n", "  {}\n"), "match",
     "give at least one of"),
])
def test_a_bad_file_is_named_with_the_field(tmp_path, change, field, message):
    path = write(tmp_path, "bad", change(VALID))
    write(tmp_path, "good", VALID)
    with pytest.raises(SuppressionError) as raised:
        load(tmp_path)
    [problem] = raised.value.problems
    assert problem.startswith(f"{path}: {field}: ") and message in problem, problem


def test_every_bad_file_is_reported_at_once_and_ids_are_unique(tmp_path):
    write(tmp_path, "a", VALID.replace("until: 2026-06-30", "until: 2030-01-01"))
    write(tmp_path, "b", "id: same\n" + VALID)
    write(tmp_path, "c", "id: same\n" + VALID)
    write(tmp_path, "d", "- not a mapping\n")
    with pytest.raises(SuppressionError) as raised:
        load(tmp_path)
    problems = raised.value.problems
    assert len(problems) == 3
    assert "a.yaml: until:" in problems[0] and "d.yaml: expected a mapping" in problems[1]
    assert "c.yaml: id: same is already used by" in problems[2]
    assert str(raised.value).startswith("suppression files are invalid:")
