"""The one human-text formatter, and every rule's alert description filled with awkward values."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from shared.catalog.loader import DETECTIONS_DIR
from shared.catalog.model import Detection
from shared.catalog.rule_files import parse_rule_file
from shared.detect import to_finding
from shared.text import day, duration, fill, join_list, moment, plural, short_id, value_text

WHEN = datetime(2026, 3, 13, 14, 25, 41, tzinfo=UTC)
START, END = datetime(2026, 3, 13, tzinfo=UTC), datetime(2026, 3, 14, tzinfo=UTC)
ARTEFACTS = re.compile(r"[\[\]']|\+00:00|\bNone\b|\(s\)|\{\{|\bnan\b")
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@pytest.mark.parametrize(("items", "expected"), [
    ([], "none"), (["a"], "a"), (["a", "b"], "a and b"), (["a", "b", "c"], "a, b and c"),
    (["a", None, "", "b"], "a and b"), ([1, 2.5, 1200], "1, 2.5 and 1,200"),
])
def test_lists_read_as_a_sentence(items: list, expected: str) -> None:
    assert join_list(items) == expected


def test_times_are_utc_to_the_minute() -> None:
    assert moment(WHEN) == "2026-03-13 14:25 UTC"
    assert moment(datetime(2026, 3, 13, 16, 25, tzinfo=timezone(timedelta(hours=2)))) == "2026-03-13 14:25 UTC"
    assert moment(datetime(2026, 3, 13, 14, 25)) == "2026-03-13 14:25 UTC"  # naive: taken as UTC
    assert moment(None) == "unknown"
    assert day(WHEN) == "2026-03-13" and day(date(2026, 1, 2)) == "2026-01-02" and day(None) == "never"


@pytest.mark.parametrize(("span", "expected"), [
    (timedelta(seconds=20), "20 s"), (timedelta(minutes=36), "36 min"), (timedelta(hours=0.6), "36 min"),
    (timedelta(minutes=89), "89 min"), (timedelta(hours=2), "2 h"), (timedelta(hours=47), "47 h"),
    (timedelta(days=3), "3 days"), (timedelta(days=2, hours=1), "2 days"), (timedelta(minutes=-5), "-5 min"),
])
def test_durations_pick_a_readable_unit(span: timedelta, expected: str) -> None:
    assert duration(span) == expected


def test_plurals_agree_with_their_number() -> None:
    assert [plural(n, "time") for n in (0, 1, 2, 1500)] == ["0 times", "1 time", "2 times", "1,500 times"]
    assert plural(2, "identity", "identities") == "2 identities"


def test_ids_are_shortened_with_a_mark() -> None:
    assert short_id("3f2a9c1e-0000-4000-8000-000000000001") == "3f2a9c1e…"
    assert short_id("abc") == "abc"


@pytest.mark.parametrize(("value", "expected"), [
    (None, "unknown"), ("", "unknown"), (True, "yes"), (3, "3"), (2.5, "2.5"), (0.04, "0.04"),
    (float("nan"), "unknown"),
    (["IP 4.175.114.51"], "IP 4.175.114.51"), (("Password", "AsymmetricX509Cert"), "Password and AsymmetricX509Cert"),
    ('["10.0.0.1","10.0.0.2"]', "10.0.0.1 and 10.0.0.2"), ("2026-03-13T14:25:41.1234567Z", "2026-03-13 14:25 UTC"),
    ("2026-03-13T14:25:41+00:00", "2026-03-13 14:25 UTC"), (WHEN, "2026-03-13 14:25 UTC"),
    (timedelta(hours=2), "2 h"), ({"AS": 64500}, "AS 64,500"), ("[not json", "[not json"),
])
def test_values_read_as_text(value: object, expected: str) -> None:
    assert value_text(value) == expected


def test_templates_agree_numbers_and_read_units_as_durations() -> None:
    template = "{{Name}} failed {{Failures}} time(s) from {{IPs}}, {{Hours}} h after {{When}}; {{Minutes}} min later"
    row = {"Name": "hr-sync", "Failures": 1, "IPs": ["1.2.3.4", "5.6.7.8"], "Hours": 0.6, "When": WHEN,
           "Minutes": 150}
    assert fill(template, row) == ("hr-sync failed 1 time from 1.2.3.4 and 5.6.7.8, 36 min after "
                                   "2026-03-13 14:25 UTC; 2 h later")
    assert fill("{{N}} time(s), {{M}} h", {"N": 3, "M": None}) == "3 times, unknown h"


def _detections() -> list[Detection]:
    problems: list[str] = []
    detections = [parse_rule_file(path, Detection, problems) for path in sorted(DETECTIONS_DIR.glob("*.yaml"))]
    assert not problems
    return [detection for detection in detections if detection is not None]


AWKWARD = {
    "a list": lambda column: [f"{column} one", f"{column} two"],
    "a one-item list": lambda column: [f"{column} only"],
    "a JSON list as text": lambda column: f'["{column} one","{column} two"]',
    "a null": lambda column: None,
    "an empty string": lambda column: "",
    "a datetime": lambda column: WHEN,
    "an ISO time as text": lambda column: "2026-03-13T14:25:41.1234567Z",
    "the number 1": lambda column: 1,
    "a fraction": lambda column: 0.6,
}


def test_every_rules_alert_description_reads_as_text() -> None:
    """Walk the catalog: every placeholder of every alertDescriptionFormat, filled with each awkward value."""
    offenders = []
    described = 0
    for detection in _detections():
        override = detection.alertDetailsOverride
        template = override.alertDescriptionFormat if override else None
        if not template:
            continue
        described += 1
        columns = PLACEHOLDER.findall(template)
        for kind, make in AWKWARD.items():
            row = {column: make(column) for column in columns}
            summary = to_finding(detection, row, START, END).summary
            found = ARTEFACTS.findall(summary)
            if found or not summary:
                offenders.append(f"{detection.id} - {detection.name}: with {kind}: {found} in {summary!r}")
    assert described >= 20
    assert not offenders, "\n".join(offenders)


def test_a_count_of_one_is_singular_in_every_rule() -> None:
    offenders = []
    for detection in _detections():
        override = detection.alertDetailsOverride
        template = (override.alertDescriptionFormat if override else None) or ""
        summary = to_finding(detection, {column: 1 for column in PLACEHOLDER.findall(template)}, START, END).summary
        for noun in re.findall(r"\}\}\s+([A-Za-z-]+)\(s\)", template):
            if f"1 {noun}" not in summary or f"1 {noun}s" in summary:
                offenders.append(f"{detection.id} - {detection.name}: {summary!r}")
    assert not offenders, "\n".join(offenders)
