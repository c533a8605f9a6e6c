"""Coverage of an audit: which log tables had rows in the audited range, and which rules could be evaluated.

The models stored with the run record and the one line people read; shared/logsource/coverage.py measures it.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from shared.text import join_list

AUDIT_RULES = "detections and posture checks"  # what an audit run's coverage counts

class TableCoverage(BaseModel):
    rows: int = 0
    first: datetime | None = None
    last: datetime | None = None


class Gap(BaseModel):
    """A rule that could not be evaluated in some or all of its windows, and the tables that had no rows there."""

    name: str
    missing: list[str]
    windows: int = Field(description="Windows the rule could not be evaluated in")
    of: int = Field(description="Windows the rule had")

    @property
    def complete(self) -> bool:
        """True: the rule was evaluated in none of its windows."""
        return self.windows == self.of


class Coverage(BaseModel):
    """Rows per table over the audited range and the rules that lacked data; stored with the run."""

    start: datetime
    end: datetime
    tables: dict[str, TableCoverage] = Field(default_factory=dict, description="every table a rule reads")
    rules: int = Field(0, description="Rules that had windows to run")
    gaps: dict[str, Gap] = Field(default_factory=dict, description="rule id -> what it lacked")
    disabled: list[str] = Field(default_factory=list, description="Names of the rules DISABLED_DETECTIONS turned "
                                                                  "off: not run, not counted")

    @property
    def not_evaluated(self) -> dict[str, Gap]:
        return {rule_id: gap for rule_id, gap in self.gaps.items() if gap.complete}

    @property
    def partly_evaluated(self) -> dict[str, Gap]:
        return {rule_id: gap for rule_id, gap in self.gaps.items() if not gap.complete}

    @property
    def has_data(self) -> bool:
        return any(table.rows for table in self.tables.values())


def coverage_line(coverage: Coverage | None, kind: str = "rules") -> str:
    """One line for people: "3 of 23 rules not evaluated: AzureDiagnostics had no rows", and the rules turned off."""
    if coverage is None:
        return "coverage: no windows to audit"
    turned_off = f"; turned off by DISABLED_DETECTIONS: {join_list(coverage.disabled)}" if coverage.disabled else ""
    return _evaluated(coverage, kind) + turned_off


def _evaluated(coverage: Coverage, kind: str) -> str:
    if not coverage.has_data:
        return (f"{len(coverage.not_evaluated)} of {coverage.rules} {kind} not evaluated: no log table had rows in "
                "the audited range")
    parts = []
    for label, gaps in (("not evaluated", coverage.not_evaluated),
                        ("evaluated only in part", coverage.partly_evaluated)):
        if gaps:
            tables = sorted({table for gap in gaps.values() for table in gap.missing})
            parts.append(f"{len(gaps)} of {coverage.rules} {kind} {label}: {join_list(tables)} had no rows")
    return "; ".join(parts) or f"all {coverage.rules} {kind} evaluated: every table they read had rows"
