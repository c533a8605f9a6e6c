"""Every rule's own sample findings (from its `tests:` cases), rendered in the Teams card and the email:
human text only - no Python lists, quotes, raw UTC offsets, `None` or `(s)`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.catalog.loader import DETECTIONS_DIR
from shared.catalog.model import Detection
from shared.catalog.render import render
from shared.catalog.rule_files import parse_rule_file
from shared.detect import to_finding
from shared.findings import Finding
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.notify.email import email_message
from shared.notify.port import Digest
from shared.notify.teams_card import teams_message
from shared.posture.catalog import load_checks
from shared.posture.run import evaluate
from shared.store.model import StoredFinding

NOW = datetime(2026, 3, 15, 6, 0, tzinfo=UTC)
# A Python list or tuple, a quote mark (an apostrophe inside a word is English), a raw offset, None, "(s)".
# `[:]` is safe_text defanging a URL in attacker-controlled text (https[:]//...), on purpose.
ARTEFACTS = re.compile(r"\[(?!:\])|(?<!\[:)\]|(?<![A-Za-z])'|'(?![A-Za-z])|\+00:00|\bNone\b|\(s\)")


def _detections() -> list[Detection]:
    problems: list[str] = []
    found = [parse_rule_file(path, Detection, problems) for path in sorted(DETECTIONS_DIR.glob("*.yaml"))]
    assert not problems
    return [detection for detection in found if detection is not None]


def _detection_findings(detection: Detection) -> list[Finding]:
    """The findings of the rule's firing test cases, as the audit would make them."""
    findings = []
    for test in detection.tests:
        if not test.expect:
            continue
        database = LogDatabase()
        for table, rows in test.rows.items():
            database.insert(table, ((None, row) for row in rows))
        source = EmbeddedLogSource(database, now=test.window.end)
        rows = source.query(render(detection, test.window.start, test.window.end, test.parameters),
                            test.window.start, test.window.end)
        findings += [to_finding(detection, row, test.window.start, test.window.end) for row in rows]
    return findings


def _check_findings() -> dict[str, list[Finding]]:
    found: dict[str, list[Finding]] = {}
    for check in load_checks():
        for test in check.tests:
            result = evaluate([check], test.snapshot(), test.usage.usage(test.now), test.now,
                              {check.id: check.values(test.parameters)})
            found.setdefault(f"{check.id} - {check.name}", []).extend(result.findings)
    return found


def _stored(finding: Finding) -> StoredFinding:
    """As stored; an Informational finding is listed as Low so that its text is rendered too (not collapsed)."""
    fields: dict[str, Any] = finding.model_dump()
    if fields["severity"] == "Informational":
        fields["severity"] = "Low"
    return StoredFinding(id=finding.id, first_detected=NOW, last_detected=NOW, **fields)


def _card_texts(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["text"]] if node.get("type") in ("TextBlock", "TextRun") else []
        own += [str(fact["value"]) for fact in node.get("facts", [])]
        return own + [text for value in node.values() for text in _card_texts(value)]
    if isinstance(node, list):
        return [text for item in node for text in _card_texts(item)]
    return []


@pytest.fixture(scope="module")
def sample_findings() -> dict[str, list[Finding]]:
    found = {f"{d.id} - {d.name}": _detection_findings(d) for d in _detections()}
    found.update(_check_findings())
    return found


def test_every_rule_has_a_sample_finding(sample_findings):
    assert not [rule for rule, findings in sample_findings.items() if not findings]


def test_every_rules_sample_findings_read_as_text_in_the_card_and_the_email(sample_findings):
    offenders = []
    for rule, findings in sample_findings.items():
        digest = Digest(generated_at=NOW, run_id="r1", findings=[_stored(f) for f in findings],
                        findings_query="/api/findings?since=2026-03-14T06:00:00Z")
        card = [text for text in _card_texts(teams_message(digest, max_findings=50)) if ARTEFACTS.search(text)]
        email = email_message(digest)
        mail = [line for line in email.text.splitlines() if ARTEFACTS.search(line)]
        if card or mail:
            offenders.append(f"{rule}: card {card} email {mail}")
    assert not offenders, "\n".join(offenders)
