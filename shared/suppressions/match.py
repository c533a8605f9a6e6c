"""Which finding fields each `match:` key compares with, and the matching rule.

| key       | compared with                                                                                    |
|-----------|--------------------------------------------------------------------------------------------------|
| principal | the principal's id and name; evidence ServicePrincipalId, AppId; directory context service     |
|           | principal id, app id and display name (any one equal: these are names of the same identity)     |
| ip        | IP entities; evidence IPAddress, IPAddresses, CallerIpAddress, CallerIPAddresses,                |
|           | ActorIPAddress, CredentialActorIPAddress, FirstSignInIPAddress; `IP x` in NewValues             |
| asn       | evidence AutonomousSystemNumber, Asn; `ASN x` in NewValues                                       |
| country   | evidence Country, Countries, Location; `Country x` in NewValues                                  |
| actor     | evidence Actor, ActorId, CredentialAddedBy, ConsentedBy, GrantedBy                              |
| resource  | AzureResource entities; evidence Resource, Resources, ResourceName, Vault, Vaults,              |
|           | AssociatedResource, AssociatedResources, IdentityResourceId, TargetId, TargetName               |

Except for `principal`, a key matches when the finding carries at least one value for it and every value
it carries is one of the suppression's (an IP inside one of its ranges): a finding that also names an IP,
country or actor outside what was declared known-good stays a finding. Text compares in any case.
A suppression matches when every key it gives matches.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.findings import Finding


@dataclass(frozen=True)
class FindingField:
    entities: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    facet: str | None = None  # the prefix of this field's entries in NewValues ("IP 1.2.3.4")


FIELDS = {
    "ip": FindingField(("IP.Address",), ("IPAddress", "IPAddresses", "CallerIpAddress", "CallerIPAddresses",
                                         "ActorIPAddress", "CredentialActorIPAddress", "FirstSignInIPAddress"), "IP "),
    "asn": FindingField((), ("AutonomousSystemNumber", "Asn"), "ASN "),
    "country": FindingField((), ("Country", "Countries", "Location"), "Country "),
    "actor": FindingField((), ("Actor", "ActorId", "CredentialAddedBy", "ConsentedBy", "GrantedBy")),
    "resource": FindingField(("AzureResource.ResourceId",),
                             ("Resource", "Resources", "ResourceName", "Vault", "Vaults", "AssociatedResource",
                              "AssociatedResources", "IdentityResourceId", "TargetId", "TargetName")),
}
_CONTEXT_NAMES = ("service_principal_id", "app_id", "display_name")


def principal_names(finding: Finding) -> set[str]:
    """Every name the finding's identity goes by, lower case."""
    context = finding.context or {}
    names = [finding.principal_id, finding.principal_name, finding.evidence.get("ServicePrincipalId"),
             finding.evidence.get("AppId"), *(context.get(name) for name in _CONTEXT_NAMES)]
    return {str(name).lower() for name in names if name}


def field_values(finding: Finding, key: str) -> list[str]:
    """The values the finding carries for a `match:` key other than principal."""
    spec = FIELDS[key]
    values = [finding.entities.get(entity) for entity in spec.entities]
    values += [finding.evidence.get(column) for column in spec.evidence]
    if spec.facet:
        values += [str(entry)[len(spec.facet):] for entry in _flat(finding.evidence.get("NewValues"))
                   if str(entry).startswith(spec.facet)]
    return sorted({text for text in (str(value).strip() for value in _flat(values)) if text})


def matches(match: dict[str, tuple[str, ...]], finding: Finding) -> bool:
    for key, wanted in match.items():
        if key == "principal":
            if not principal_names(finding) & {value.lower() for value in wanted}:
                return False
            continue
        found = field_values(finding, key)
        if not found or not all(_one_of(key, value, wanted) for value in found):
            return False
    return True


def _one_of(key: str, value: str, wanted: tuple[str, ...]) -> bool:
    if key != "ip":
        return value.lower() in {w.lower() for w in wanted}
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False  # not an address: cannot be shown to be inside a known-good range
    return any(address in ipaddress.ip_network(network, strict=False) for network in wanted)


def _flat(value: Any) -> Iterator[Any]:
    if isinstance(value, list | tuple | set):
        for item in value:
            yield from _flat(item)
    elif value is not None and not isinstance(value, dict):
        yield value
