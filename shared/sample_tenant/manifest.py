"""Read a sample tenant's manifest and tell which findings its injected stories account for."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from shared.catalog.loader import Catalog
from shared.findings import Finding
from shared.logsource.values import parse_datetime
from shared.posture.catalog import CHECKS_DIR, PostureCatalog
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
    def load(cls, path: Path, catalog: Catalog, checks: PostureCatalog | None = None) -> Manifest:
        """Expectations resolved by detection file name, and by posture check file name when `checks` are
        given; without them, posture expectations are left out (an audit of the detections alone cannot meet them)."""
        document = json.loads(path.read_text(encoding="utf-8"))
        scenarios = tuple(
            ExpectedScenario(item["id"], item["title"], resolved, item["principal_id"], item["principal_name"])
            for item in document["scenarios"] for stem in item["detections"]
            if (resolved := _resolve(stem, catalog, checks)) is not None)
        return cls(document["now"], scenarios, document["seed"], document["servicePrincipals"], document["days"])

    @property
    def now_time(self) -> datetime:
        return parse_datetime(self.now)

    def without(self, rule_ids: Iterable[str]) -> Manifest:
        """The expectations of every rule but these (the ones an audit does not run)."""
        left_out = set(rule_ids)
        return replace(self, scenarios=tuple(s for s in self.scenarios if s.detection_id not in left_out))

    def scenario_of(self, finding: Finding | StoredFinding) -> ExpectedScenario | None:
        return next((scenario for scenario in self.scenarios if scenario.explains(finding)), None)

    def missed(self, findings: Sequence[Finding | StoredFinding]) -> list[ExpectedScenario]:
        return [s for s in self.scenarios if not any(s.explains(finding) for finding in findings)]


def _resolve(stem: str, catalog: Catalog, checks: PostureCatalog | None) -> str | None:
    """The id of the detection or posture check named `stem`; None for a posture check when none were given."""
    if checks is not None and stem in checks.stems:
        return checks.get(stem).id
    if (CHECKS_DIR / f"{stem}.yaml").is_file():
        return None
    return catalog.get(stem).id
