"""Evidence of any size and shape is stored; `evidence_trimmed` is set exactly when something was cut."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.store import TableFindingStore
from shared.store.trim import PROPERTY_UNITS, fit_json, jsonable

NOW = datetime(2024, 5, 2, tzinfo=UTC)

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=50),
                    st.datetimes(timezones=st.just(UTC)), st.binary(max_size=20))
huge_strings = st.builds(lambda ch, n: ch * n, st.sampled_from(["a", "é", "\U0001f600", "\"", "\\", "\u0000"]),
                         st.integers(min_value=0, max_value=120_000))
values = st.recursive(st.one_of(scalars, huge_strings),
                      lambda children: st.one_of(st.lists(children, max_size=8),
                                                 st.dictionaries(st.text(max_size=10), children, max_size=8)),
                      max_leaves=30)
wide = st.builds(lambda n, size: {f"col{i}": "x" * size for i in range(n)},
                 st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=400))
long_list = st.builds(lambda n: {"ips": [f"10.0.{i // 256}.{i % 256}" for i in range(n)]},
                      st.integers(min_value=0, max_value=20_000))
evidence_strategy = st.one_of(st.dictionaries(st.text(max_size=20), values, max_size=10), wide, long_list)


@pytest.fixture(scope="module")
def trim_store(table_service) -> TableFindingStore:
    store = TableFindingStore(table_service, prefix=f"h{uuid.uuid4().hex[:16]}")
    store.ensure_tables()
    return store


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow, HealthCheck.data_too_large])
@given(evidence=evidence_strategy, context=st.one_of(st.none(), evidence_strategy))
def test_any_evidence_is_stored_and_trimmed_iff_cut(trim_store: TableFindingStore, make_finding, evidence,
                                                    context) -> None:
    finding = make_finding(principal=uuid.uuid4().hex, evidence=evidence, context=context)
    trim_store.upsert_findings([finding], run_id="run1", now=NOW)
    stored = trim_store.get_finding(finding.id)
    assert stored is not None
    expected_evidence = json.loads(json.dumps(jsonable(evidence)))
    expected_context = None if context is None else json.loads(json.dumps(jsonable(context)))
    intact = stored.evidence == expected_evidence and stored.context == expected_context
    assert stored.evidence_trimmed == (not intact)


def test_huge_evidence_keeps_its_shape_and_says_so(finding_store: TableFindingStore, make_finding) -> None:
    evidence = {"ips": [f"10.0.0.{i % 250}" for i in range(50_000)], "note": "n" * 200_000, "count": 7}
    finding = make_finding(evidence=evidence, summary="s" * 100_000, principal_name="p" * 50_000)
    finding_store.upsert_findings([finding], run_id="run1", now=NOW)
    stored = finding_store.get_finding(finding.id)
    assert stored.evidence_trimmed and stored.evidence["count"] == 7
    assert stored.evidence["ips"][0] == "10.0.0.0" and "more items" in stored.evidence["ips"][-1]
    assert len(stored.summary) < 10_000


def test_fit_json_is_exact_at_the_limit() -> None:
    text = "a" * (PROPERTY_UNITS - 2)
    assert fit_json(text) == (json.dumps(text), False)
    assert fit_json(text + "a")[1] is True
    small, trimmed = fit_json({"k": ["\u00e9" * 10_000]})  # 6 ASCII characters per escaped é
    assert trimmed and len(small) <= PROPERTY_UNITS
