"""Read a sample tenant's manifest and tell which findings its injected stories account for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from shared.catalog.loader import Catalog
from shared.findings import Finding
from shared.logsource.values import parse_datetime
from shared.store.model import StoredFinding


@dataclass(frozen=True)
class ExpectedScenario:
    """One detection a story must trigger (a story expecting three detections is three of these)."""

    id: str
    title: str
    detection_id: str
    principal_id: str
    principal_name: str

    def explains(self, finding: Finding | StoredFinding) -> bool:
        return finding.detection_id == self.detection_id and finding.principal_id == self.principal_id


@dataclass(frozen=True)
class Manifest:
    now: str
    scenarios: tuple[ExpectedScenario, ...]
    seed: int
    service_principals: int
    days: int

    @classmethod
    def load(cls, path: Path, catalog: Catalog) -> Manifest:
        document = json.loads(path.read_text(encoding="utf-8"))
        scenarios = tuple(
            ExpectedScenario(item["id"], item["title"], catalog.get(detection).id, item["principal_id"],
                             item["principal_name"])
            for item in document["scenarios"] for detection in item["detections"])
        return cls(document["now"], scenarios, document["seed"], document["servicePrincipals"], document["days"])

    @property
    def now_time(self) -> datetime:
        return parse_datetime(self.now)

    def scenario_of(self, finding: Finding | StoredFinding) -> ExpectedScenario | None:
        return next((scenario for scenario in self.scenarios if scenario.explains(finding)), None)

    def missed(self, findings: Sequence[Finding | StoredFinding]) -> list[ExpectedScenario]:
        return [s for s in self.scenarios if not any(s.explains(finding) for finding in findings)]
