"""Finding queries on real Azurite: every filter, paging, continuation tokens, injection-looking values."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from shared.store import InvalidContinuation, TableFindingStore, Triage

NOW = datetime(2024, 5, 10, 7, 0, tzinfo=UTC)
SEVERITY = ["Informational", "Low", "Medium", "High"]


def populate(store: TableFindingStore, make_finding) -> TableFindingStore:
    """24 findings: 6 runs (one per hour), detections a/b, principals sp0..sp3, severities cycling."""
    for hour in range(6):
        batch = [make_finding(principal=f"sp{i % 4}", detection="det_a" if i % 2 else "det_b", day=hour,
                              severity=SEVERITY[(hour + i) % 4], entities={"n": f"{hour}-{i}"}) for i in range(4)]
        store.upsert_findings(batch, run_id=f"run{hour}", now=NOW + timedelta(hours=hour))
    return store


@pytest.fixture(scope="module")
def populated(table_service, make_finding) -> TableFindingStore:
    """Read-only tests share one populated store (tests that write use their own)."""
    store = TableFindingStore(table_service, prefix=f"q{uuid.uuid4().hex[:16]}")
    store.ensure_tables()
    return populate(store, make_finding)


def everything(store: TableFindingStore):
    return store.query_findings(limit=1000)[0]


def test_unfiltered_is_newest_first(populated: TableFindingStore) -> None:
    found = everything(populated)
    assert len(found) == 24 and len({f.id for f in found}) == 24
    times = [f.last_detected for f in found]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(("filters", "predicate"), [
    ({"principal": "sp1"}, lambda f: f.principal_id == "sp1"),
    ({"principal": "SP1"}, lambda f: f.principal_id == "sp1"),
    ({"principal": "name-sp2"}, lambda f: f.principal_name == "name-sp2"),
    ({"detection": "det_a"}, lambda f: f.detection_id == "det_a"),
    ({"min_severity": "Medium"}, lambda f: f.severity in ("Medium", "High")),
    ({"min_severity": "high"}, lambda f: f.severity == "High"),
    ({"since": NOW + timedelta(hours=4)}, lambda f: f.last_detected >= NOW + timedelta(hours=4)),
    ({"until": NOW + timedelta(hours=2)}, lambda f: f.last_detected < NOW + timedelta(hours=2)),
    ({"since": NOW + timedelta(hours=1), "until": NOW + timedelta(hours=3), "detection": "det_b",
      "min_severity": "Low"},
     lambda f: NOW + timedelta(hours=1) <= f.last_detected < NOW + timedelta(hours=3)
     and f.detection_id == "det_b" and f.severity != "Informational"),
    ({"principal": "sp3", "status": "new", "min_severity": "Low"},
     lambda f: f.principal_id == "sp3" and f.severity != "Informational"),
])
def test_each_filter(populated: TableFindingStore, filters, predicate) -> None:
    expected = [f.id for f in everything(populated) if predicate(f)]
    assert expected  # the case means something
    found, token = populated.query_findings(**filters, limit=1000)
    assert [f.id for f in found] == expected and token is None


def test_status_filter_follows_triage(finding_store: TableFindingStore, make_finding) -> None:
    populated = populate(finding_store, make_finding)
    target = everything(populated)[5]
    populated.triage(target.id, Triage(status="resolved", comment="fixed", by="carol"), NOW + timedelta(days=1))
    assert [f.id for f in populated.query_findings(status="resolved")[0]] == [target.id]
    assert target.id not in {f.id for f in populated.query_findings(status="new", limit=1000)[0]}
    assert len(everything(populated)) == 24


def test_bad_filters_are_value_errors(populated: TableFindingStore) -> None:
    for bad in ({"min_severity": "Critical"}, {"status": "open"}, {"limit": 0}, {"limit": 5000}):
        with pytest.raises(ValueError):
            populated.query_findings(**bad)


@pytest.mark.parametrize("limit", [1, 5, 7, 24, 30])
def test_paging_has_no_duplicates_or_gaps(populated: TableFindingStore, limit: int) -> None:
    expected = [f.id for f in everything(populated)]
    seen, token, pages = [], None, 0
    while True:
        page, token = populated.query_findings(limit=limit, continuation=token)
        pages += 1
        assert len(page) <= limit
        seen += [f.id for f in page]
        if token is None:
            break
    assert seen == expected
    assert pages == -(-24 // limit)  # the last full page carries no token to an empty one


def test_paging_with_filters(populated: TableFindingStore) -> None:
    expected = [f.id for f in populated.query_findings(min_severity="Low", limit=1000)[0]]
    seen, token = [], None
    while True:
        page, token = populated.query_findings(min_severity="Low", limit=4, continuation=token)
        seen += [f.id for f in page]
        if token is None:
            break
    assert seen == expected


def test_forged_and_foreign_tokens_are_rejected(populated: TableFindingStore, table_service) -> None:
    _, token = populated.query_findings(limit=3)
    assert token
    payload, signature = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["after"] = ""
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode() + "." + signature
    for bad in (forged, token + "x", "not-a-token", "", "a.b.c", token.replace(".", "")):
        with pytest.raises(InvalidContinuation):
            populated.query_findings(limit=3, continuation=bad or "x")
    with pytest.raises(InvalidContinuation, match="different query"):
        populated.query_findings(limit=3, detection="det_a", continuation=token)
    other = TableFindingStore(table_service, prefix=populated.prefix + "x")
    other.ensure_tables()
    with pytest.raises(InvalidContinuation):
        other.query_findings(limit=3, continuation=token)
    assert issubclass(InvalidContinuation, ValueError)
    # a fresh store object on the same tables shares the secret: the token stays valid
    same = TableFindingStore(table_service, prefix=populated.prefix)
    assert len(same.query_findings(limit=3, continuation=token)[0]) == 3


@pytest.mark.parametrize("value", ["x' or PartitionKey ne '", "' or 1 eq 1 or '", "a/b#c?d\\e", "@pk", "sp1 ",
                                   "x\u0000y", "'", "日本"])
def test_injection_looking_values_are_literals(finding_store: TableFindingStore, make_finding, value: str) -> None:
    literal = make_finding(principal=value, detection=value)
    finding_store.upsert_findings([literal, make_finding(principal="other", detection="det_x")],
                                  run_id="run1", now=NOW)
    assert [f.id for f in finding_store.query_findings(principal=value)[0]] == [literal.id]
    assert [f.id for f in finding_store.query_findings(detection=value)[0]] == [literal.id]
    assert finding_store.get_finding(literal.id).principal_id == value.replace("\u0000", "\u0000")
    assert finding_store.query_findings(principal=value + "z")[0] == []
