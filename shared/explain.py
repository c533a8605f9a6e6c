"""What a stored finding means and what to do about it: the rule's description and remediation, its query
with the finding's window filled in (ready to paste into Log Analytics), the ATT&CK techniques and the
Entra admin center pages of the identity (shared/links.py). One function, `explain`, for
`wiaudit findings show` and GET /api/findings/{id}.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

from shared.catalog.loader import DETECTIONS_DIR
from shared.catalog.model import Detection
from shared.catalog.render import render
from shared.catalog.rule_files import parse_rule_file
from shared.links import Link, identity_links
from shared.posture.catalog import PostureCheck, load_checks
from shared.store.model import StoredFinding

ATTACK = "https://attack.mitre.org/techniques/"
NO_RULE = "The rule that made this finding is no longer in the catalog."


@dataclass(frozen=True)
class Explanation:
    """`query` is the detection's KQL with the finding's window filled in; posture checks have none."""

    description: str
    remediation: str | None
    query: str | None = None
    techniques: list[Link] = field(default_factory=list)
    portal: list[Link] = field(default_factory=list)


def explain(finding: StoredFinding) -> Explanation:
    """The explanation of a finding from its rule (looked up by the finding's detection id) and its identity."""
    rule = rule_by_id(finding.detection_id)
    portal = identity_links(finding.context)
    if rule is None:
        return Explanation(description=NO_RULE, remediation=None, portal=portal)
    query = render(rule, finding.window_start, finding.window_end) if isinstance(rule, Detection) else None
    return Explanation(description=rule.description.strip(), remediation=(rule.remediation or "").strip() or None,
                       query=query, techniques=[technique_link(t) for t in rule.relevantTechniques], portal=portal)


def technique_link(technique: str) -> Link:
    """`T1098.001` -> https://attack.mitre.org/techniques/T1098/001/"""
    return Link(technique, ATTACK + technique.replace(".", "/") + "/")


def rule_by_id(rule_id: str) -> Detection | PostureCheck | None:
    return _rules().get(rule_id)


@cache
def _rules() -> dict[str, Detection | PostureCheck]:
    """Every rule by id, the detections parsed but not translated (the catalog loader's slow part)."""
    detections = [rule for path in sorted(DETECTIONS_DIR.glob("*.yaml"))
                  if (rule := parse_rule_file(path, Detection, [])) is not None]
    return {rule.id: rule for rule in [*detections, *load_checks()]}
