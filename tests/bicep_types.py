"""A type check of Bicep resources against Azure's and Microsoft Graph's Bicep type definitions.

No Bicep compiler runs here; pycep parses the templates, and the type data the compiler itself uses
(infra/types/, from Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types) says what each
resource type at each API version accepts. For every resource: the type and API version exist, it is
deployed at a scope the type allows, every property it sets exists (recursively, through objects,
arrays and discriminated objects), none of them is read-only, every required property is set, and a
literal string given where the type only allows certain values is one of them.

pycep does not tell a string literal from a name (`'Disabled'` and `location` both parse as strings),
so a string that names a parameter, variable or resource of the file counts as an expression; an
expression's value is not checked, only where it goes.

Where the type data is known to be wrong, the template says so as it would to the Bicep compiler: a
`#disable-next-line BCP187` (or BCP037) line before a resource's top-level property accepts that
property there (e.g. `location` on basicPublishingCredentialsPolicies, which Azure wants and the type
data lacks).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from infra_helpers import INFRA, unwrap

TYPES = INFRA / "types"
REQUIRED, READ_ONLY = 1, 2
SCOPE_BITS = {"tenant": 1, "managementGroup": 2, "subscription": 4, "resourceGroup": 8}
EXTENSION = 16
# Bicep's own keywords in a resource body, not properties of the resource type.
KEYWORDS = {"parent", "scope", "dependsOn"}
RESOURCE_LINE = re.compile(r"^\s*resource\s+(\w+)\s")
DISABLE_UNKNOWN = re.compile(r"^\s*#disable-next-line\b.*\b(BCP187|BCP037)\b")
PROPERTY_LINE = re.compile(r"^\s*'?(\w+)'?\s*:")


def acknowledged_gaps(text: str) -> set[tuple[str, str]]:
    """(resource, top-level property) pairs that a `#disable-next-line BCP187|BCP037` line accepts."""
    gaps, resource, disabled = set(), None, False
    for line in text.splitlines():
        if match := RESOURCE_LINE.match(line):
            resource = match.group(1)
        if DISABLE_UNKNOWN.match(line):
            disabled = True
            continue
        if disabled and line.strip() and (match := PROPERTY_LINE.match(line)) and resource:
            gaps.add((resource, match.group(1)))
        disabled = disabled and not line.strip()
    return gaps


@dataclass
class TypeFile:
    nodes: list[dict[str, Any]]

    def node(self, ref: dict[str, str]) -> dict[str, Any]:
        return self.nodes[int(ref["$ref"].removeprefix("#/"))]


@cache
def resource_types(root: Path = TYPES) -> dict[str, tuple[TypeFile, dict[str, Any]]]:
    """'type@apiversion' (lower case) -> (its file, its ResourceType node), from every types.json under root."""
    found = {}
    for path in sorted(root.rglob("types.json")):
        file = TypeFile(json.loads(path.read_text()))
        for node in file.nodes:
            if node["$type"] == "ResourceType":
                found[node["name"].lower()] = (file, node)
    return found


@dataclass
class Checker:
    doc: dict[str, Any]
    where: str
    gaps: set[tuple[str, str]] = field(default_factory=set)
    problems: list[str] = field(default_factory=list)
    current: str = ""

    def __post_init__(self) -> None:
        self.names = {*(self.doc.get("parameters") or {}), *(self.doc.get("variables") or {}),
                      *(self.doc.get("resources") or {}), *(self.doc.get("modules") or {})}

    def run(self) -> list[str]:
        target = ((self.doc.get("globals") or {}).get("scope") or {}).get("value", "resourceGroup")
        for name, entry in (self.doc.get("resources") or {}).items():
            self.resource(name, entry, target)
        return self.problems

    def resource(self, name: str, entry: dict[str, Any], target: str) -> None:
        label = f"{self.where}: resource {name} ({entry['type']}@{entry['api_version']})"
        self.current = name
        known = resource_types().get(f"{entry['type']}@{entry['api_version']}".lower())
        if known is None:
            self.problems.append(f"{label}: no such resource type and API version in infra/types "
                                 "(a typo, or run infra/types/refresh.py)")
            return
        file, resource = known
        body = unwrap(entry["config"])
        self.scope(label, resource, body, target, existing=bool(entry.get("existing")))
        self.object(label, file, file.node(resource["body"]), body, "", creating=not entry.get("existing"))

    def scope(self, label: str, resource: dict[str, Any], body: dict[str, Any], target: str, existing: bool) -> None:
        allowed = resource.get("readableScopes" if existing else "writableScopes", resource.get("scopeType", 0))
        if not allowed:  # 0: the type does not restrict its scope (Microsoft Graph)
            return
        given = body.get("scope")
        if given is None:
            scope = SCOPE_BITS[target]
        elif isinstance(given, str) and given in (self.doc.get("resources") or {}):
            scope = EXTENSION  # scope: <a resource>
        else:  # resourceGroup(...), subscription(), tenant()
            call = json.dumps(given)
            scope = next((bit for name, bit in SCOPE_BITS.items() if f'"{name}"' in call), SCOPE_BITS[target])
        if not allowed & scope:
            names = [name for name, bit in [*SCOPE_BITS.items(), ("extension", EXTENSION)] if allowed & bit]
            where = next(name for name, bit in [*SCOPE_BITS.items(), ("extension", EXTENSION)] if bit == scope)
            self.problems.append(f"{label}: deployed at {where} scope, but the type allows only {', '.join(names)}")

    def object(self, label: str, file: TypeFile, node: dict[str, Any], value: Any, path: str, creating: bool) -> None:
        """Check an object literal against an ObjectType or DiscriminatedObjectType node."""
        if not isinstance(value, dict) or _is_expression(value):
            return
        properties, additional = self._properties(file, node, value)
        for key, inner in value.items():
            key = key.strip("'")
            if not path and key in KEYWORDS:
                continue
            where = f"{path}{key}"
            if key not in properties:
                if not path and (self.current, key) in self.gaps:
                    continue
                if additional is None and "${" not in key:
                    self.problems.append(f"{label}: {where} is not a property of {node.get('name', 'this object')} "
                                         f"(it has {', '.join(sorted(properties)) or 'none'})")
                elif additional is not None:
                    self.value(label, file, file.node(additional), inner, where, creating)
                continue
            flags = properties[key].get("flags", 0)
            if flags & READ_ONLY and not flags & REQUIRED and creating:
                self.problems.append(f"{label}: {where} is read-only (Azure sets it)")
                continue
            self.value(label, file, file.node(properties[key]["type"]), inner, where, creating)
        if creating:
            missing = sorted(key for key, prop in properties.items()
                             if prop.get("flags", 0) & REQUIRED and not prop.get("flags", 0) & READ_ONLY
                             and key not in {k.strip("'") for k in value})
            for key in missing:
                self.problems.append(f"{label}: {path}{key} is required")

    def _properties(self, file: TypeFile, node: dict[str, Any], value: dict[str, Any]) -> tuple[dict, Any]:
        if node["$type"] == "DiscriminatedObjectType":
            chosen = value.get(node["discriminator"])
            properties = dict(node.get("baseProperties") or {})
            if isinstance(chosen, str) and chosen in node["elements"]:
                element = file.node(node["elements"][chosen])
                properties.update(element.get("properties") or {})
                return properties, element.get("additionalProperties")
            properties[node["discriminator"]] = {"type": {"$ref": "#/0"}, "flags": REQUIRED}
            return properties, None
        return dict(node.get("properties") or {}), node.get("additionalProperties")

    def value(self, label: str, file: TypeFile, node: dict[str, Any], value: Any, path: str, creating: bool) -> None:
        kind = node["$type"]
        if kind in ("ObjectType", "DiscriminatedObjectType"):
            self.object(label, file, node, value, f"{path}.", creating)
        elif kind == "ArrayType" and isinstance(value, list):
            for number, item in enumerate(value):
                self.value(label, file, file.node(node["itemType"]), item, f"{path}[{number}]", creating)
        elif kind in ("UnionType", "StringLiteralType") and self._literal(value):
            allowed = list(_literals(file, node))
            if allowed and value not in allowed:
                self.problems.append(f"{label}: {path} is {value!r}, not one of {', '.join(map(repr, allowed))}")

    def _literal(self, value: Any) -> bool:
        return isinstance(value, str) and value not in self.names and "${" not in value


def _literals(file: TypeFile, node: dict[str, Any]) -> Iterator[str]:
    """The allowed strings of a literal or a union of literals; nothing when any string is allowed."""
    if node["$type"] == "StringLiteralType":
        yield node["value"]
        return
    members = [file.node(element) for element in node.get("elements", [])]
    if all(member["$type"] == "StringLiteralType" for member in members):
        yield from (member["value"] for member in members)


def _is_expression(value: dict[str, Any]) -> bool:
    return set(value) <= {"function", "operator"} and bool(value)


def type_problems(doc: dict[str, Any], where: str, text: str = "") -> list[str]:
    """Every type problem of a parsed template; `text` (its source) for the `#disable-next-line` lines."""
    return Checker(doc, where, acknowledged_gaps(text)).run()
