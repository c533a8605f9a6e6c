"""A Finding: one detection firing for one entity in one window, with its evidence."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

from shared.severity import Severity


def fingerprint(*parts: str) -> str:
    """A stable id from the parts; the same detection and entity always give the same finding id."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


class SuppressedBy(BaseModel):
    """The suppression file a finding matched: the finding is stored `suppressed` and never notified."""

    id: str
    reason: str
    owner: str
    until: date


class Finding(BaseModel):
    detection_id: str
    detection_name: str
    severity: Severity
    principal_id: str = Field(description="Object id, app id or name of the workload identity, as the log has it")
    principal_name: str = ""
    entities: dict[str, str] = Field(description="EntityType.Identifier -> value, from the entity mappings")
    window_start: datetime
    window_end: datetime
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    summary: str = ""
    evidence: dict[str, Any] = Field(default_factory=dict, description="The query's output row")
    context: dict[str, Any] | None = Field(default=None, description="Directory context of the principal")
    suppression: SuppressedBy | None = Field(default=None, description="The live suppression it matched")

    @property
    def id(self) -> str:
        """Detection and entity: the same identity firing again is the same finding, recurring."""
        return fingerprint(self.detection_id, *(f"{key}={value}" for key, value in sorted(self.entities.items())))

    @property
    def occurrence_id(self) -> str:
        """Finding and window: re-running a window lands on the same occurrence."""
        return fingerprint(self.id, self.window_start.isoformat(), self.window_end.isoformat())
