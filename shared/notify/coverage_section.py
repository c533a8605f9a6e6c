"""The digest's log coverage section: the rules the run could not evaluate for lack of log rows, and those
DISABLED_DETECTIONS turned off."""

from __future__ import annotations

from shared.coverage import Coverage, coverage_line
from shared.notify.port import DigestSection
from shared.text import join_list, plural

RULES_LISTED = 10


def coverage_sections(coverage: Coverage | None, kind: str) -> list[DigestSection]:
    """One section when some rule was not evaluated or was turned off, titled with the coverage line; none otherwise
    (a rule that lacked rows in only some of its windows is in the run record and the CLI, not worth a digest
    section)."""
    if coverage is None or not (coverage.not_evaluated or coverage.disabled):
        return []
    lines = [f"{gap.name}: no rows in {join_list(gap.missing)}"
             + ("" if gap.complete else f" in {gap.windows} of {plural(gap.of, 'window')}")
             for gap in coverage.gaps.values()]
    if len(lines) > RULES_LISTED:
        lines = [*lines[:RULES_LISTED], f"and {len(lines) - RULES_LISTED} more"]
    severity = "Medium" if coverage.not_evaluated else None
    return [DigestSection(title=coverage_line(coverage, kind), lines=lines, severity=severity)]
