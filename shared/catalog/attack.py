"""The MITRE ATT&CK (Enterprise) techniques the catalog uses, with the tactics each belongs to.

Extend it when a detection maps a new technique; the catalog tests refuse unknown ids and
techniques mapped without one of their tactics.
"""

import re

TECHNIQUE = re.compile(r"^T\d{4}(\.\d{3})?$")

TECHNIQUE_TACTICS: dict[str, tuple[str, ...]] = {
    "T1069": ("Discovery",),
    "T1078": ("DefenseEvasion", "Persistence", "PrivilegeEscalation", "InitialAccess"),
    "T1087": ("Discovery",),
    "T1098": ("Persistence", "PrivilegeEscalation"),
    "T1110": ("CredentialAccess",),
    "T1114": ("Collection",),
    "T1136": ("Persistence",),
    "T1213": ("Collection",),
    "T1484": ("DefenseEvasion", "PrivilegeEscalation"),
    "T1526": ("Discovery",),
    "T1528": ("CredentialAccess",),
    "T1530": ("Collection",),
    "T1550": ("DefenseEvasion", "LateralMovement"),
    "T1552": ("CredentialAccess",),
    "T1555": ("CredentialAccess",),
    "T1556": ("CredentialAccess", "DefenseEvasion", "Persistence"),
    "T1580": ("Discovery",),
    "T1606": ("CredentialAccess",),
}


def tactics_of(technique: str) -> tuple[str, ...]:
    """Tactics of a technique or sub-technique (T1098.001 -> those of T1098); () when unknown."""
    return TECHNIQUE_TACTICS.get(technique.split(".")[0], ())


def technique_ids(values: list[str]) -> list[str]:
    """The values when every one is an ATT&CK technique id; ValueError naming those that are not."""
    bad = [value for value in values if not TECHNIQUE.match(value)]
    if bad:
        raise ValueError(f"not ATT&CK technique ids (T1234 or T1234.001): {bad}")
    return values
