"""Posture checks as data: one YAML file per check in shared/posture/checks/, with the metadata,
severity, parameters and tests a KQL detection has, and `check:` naming the Python function in
shared/posture/checks.py that evaluates it.

Unknown keys are refused, in the check and in its tests' directory fragments, so a typo fails
instead of being ignored. A problem names the file and the field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.catalog.attack import tactics_of, technique_ids
from shared.catalog.model import Tactic
from shared.catalog.rule_files import RuleCatalog, RuleFileError, duplicate_ids, parse_rule_file
from shared.directory.model import DirectorySnapshot
from shared.posture import application_checks, azure_role_checks, federation  # noqa: F401  (register their checks)
from shared.posture.checks import CHECKS
from shared.posture.usage import MANAGED_IDENTITY_TABLE, SERVICE_PRINCIPAL_TABLE, SignInUsage
from shared.severity import Severity

CHECKS_DIR = Path(__file__).resolve().parent / "checks"
TEST_TENANT = "00000000-0000-4000-8000-00000000a11d"
POSTURE_TABLES = ("Directory",)
SIGN_IN_TABLES = (SERVICE_PRINCIPAL_TABLE, MANAGED_IDENTITY_TABLE)
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TYPES = {"int": int, "real": (int, float), "string": str, "dynamic": (list, dict)}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CheckParameter(Strict):
    """A setting of the check, with the default used unless the run overrides it."""

    type: Literal["int", "real", "string", "dynamic"]
    default: Any
    description: str

    @model_validator(mode="after")
    def _default_has_type(self) -> CheckParameter:
        if isinstance(self.default, bool) or not isinstance(self.default, _TYPES[self.type]):
            raise ValueError(f"default {self.default!r} is not of type {self.type}")
        return self


class CredentialUse(Strict):
    """The last successful sign-in of one principal with one credential (by key id, thumbprint or federated id)."""

    principal: str
    lastUsed: datetime
    keyId: str | None = None
    thumbprint: str | None = None
    federatedCredentialId: str | None = None

    @model_validator(mode="after")
    def _one_key(self) -> CredentialUse:
        if sum(value is not None for value in (self.keyId, self.thumbprint, self.federatedCredentialId)) != 1:
            raise ValueError("give exactly one of keyId, thumbprint, federatedCredentialId")
        return self


class UsageFragment(Strict):
    """What the sign-in logs say, as the usage query would return it."""

    logsStart: datetime | dict[str, datetime] | None = Field(
        None, description="Earliest sign-in record (one moment for both tables, or per table); none: no logs")
    signIns: dict[str, datetime] = Field(default_factory=dict, description="principal -> last successful sign-in")
    unattributed: dict[str, datetime] = Field(default_factory=dict,
                                              description="principal -> last success that named no credential")
    credentials: list[CredentialUse] = Field(default_factory=list)

    def usage(self, now: datetime) -> SignInUsage:
        usage = SignInUsage(read_from=now - timedelta(days=3650), read_until=now)
        if isinstance(self.logsStart, datetime):
            usage.logs_start = dict.fromkeys(SIGN_IN_TABLES, self.logsStart)
        elif self.logsStart:
            usage.logs_start = dict(self.logsStart)
        usage.principals = {key.lower(): value for key, value in self.signIns.items()}
        usage.unattributed = {key.lower(): value for key, value in self.unattributed.items()}
        for use in self.credentials:
            if use.keyId:
                usage.key_ids[(use.principal.lower(), use.keyId.lower())] = use.lastUsed
            elif use.thumbprint:
                usage.thumbprints[(use.principal.lower(), "".join(c for c in use.thumbprint if c.isalnum()).upper())
                                  ] = use.lastUsed
            else:
                usage.federated[(use.principal.lower(), (use.federatedCredentialId or "").lower())] = use.lastUsed
        return usage


class ExpectedHit(Strict):
    """A finding the check must return: its principal, and the credential when it is about one."""

    principal: str
    keyId: str | None = None
    severity: Severity | None = None
    evidence: dict[str, Any] = Field(default_factory=dict, description="Evidence fields to compare (a subset)")


class CheckTest(Strict):
    name: str
    now: datetime
    directory: dict[str, Any] = Field(description="A directory snapshot fragment, in Graph's names")
    usage: UsageFragment = Field(default_factory=UsageFragment)
    parameters: dict[str, Any] = Field(default_factory=dict)
    expect: list[ExpectedHit]

    @field_validator("directory")
    @classmethod
    def _directory(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = unknown_keys(DirectorySnapshot, value)
        if unknown:
            raise ValueError("unknown key(s) " + ", ".join(unknown))
        document = {"tenantId": TEST_TENANT, "exportedAt": "2026-01-01T00:00:00Z", **value}
        DirectorySnapshot.model_validate(document)
        return document

    def snapshot(self) -> DirectorySnapshot:
        return DirectorySnapshot.model_validate({**self.directory, "exportedAt": self.now})


class PostureCheck(Strict):
    id: str
    name: str
    description: str
    remediation: str | None = Field(None, description="What to do about a finding: required for High and Medium")
    severity: Severity
    kind: Literal["Posture"]
    check: str = Field(description="The function in shared/posture/checks.py")
    tactics: list[Tactic] = Field(min_length=1)  # type: ignore[valid-type]
    relevantTechniques: list[str] = Field(min_length=1)
    references: list[str] = Field(default_factory=list, description="Baselines this check implements")
    parameters: dict[str, CheckParameter] = Field(default_factory=dict)
    usageLookback: str | None = Field(None, description="The int parameter: days of sign-ins the check needs")
    version: str = "1.0.0"
    tests: list[CheckTest] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not _GUID.fullmatch(value):
            raise ValueError(f"{value!r} is not a lower-case GUID")
        return value

    @field_validator("check")
    @classmethod
    def _known_function(cls, value: str) -> str:
        if value not in CHECKS:
            raise ValueError(f"no check function {value!r} in shared/posture/checks.py (it has {', '.join(CHECKS)})")
        return value

    @field_validator("relevantTechniques")
    @classmethod
    def _techniques(cls, values: list[str]) -> list[str]:
        return technique_ids(values)

    @model_validator(mode="after")
    def _tactics_of_techniques(self) -> PostureCheck:
        known = {tactic for technique in self.relevantTechniques for tactic in tactics_of(technique)}
        if not known:
            raise ValueError(f"relevantTechniques: none of {self.relevantTechniques} is in shared/catalog/attack.py")
        stray = [tactic for tactic in self.tactics if tactic not in known]
        if stray:
            raise ValueError(f"tactics: {stray} belong to none of the techniques {self.relevantTechniques}")
        return self

    @model_validator(mode="after")
    def _lookback_names_int_parameter(self) -> PostureCheck:
        if self.usageLookback is not None and (self.usageLookback not in self.parameters
                                               or self.parameters[self.usageLookback].type != "int"):
            raise ValueError(f"usageLookback: {self.usageLookback!r} is not an int parameter of this check")
        return self

    @model_validator(mode="after")
    def _tests_use_known_parameters(self) -> PostureCheck:
        for number, test in enumerate(self.tests):
            unknown = set(test.parameters) - set(self.parameters)
            if unknown:
                raise ValueError(f"tests.{number}.parameters: no such parameter(s) {sorted(unknown)}")
        return self

    @model_validator(mode="after")
    def _firing_and_silent(self) -> PostureCheck:
        if not any(test.expect for test in self.tests):
            raise ValueError("tests: needs at least one case that fires (a non-empty expect)")
        if not any(not test.expect for test in self.tests):
            raise ValueError("tests: needs at least one case that stays silent (expect: [])")
        return self

    def values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters' values: defaults, then overrides (ValueError for an unknown name or a wrong type)."""
        overrides = dict(overrides or {})
        unknown = set(overrides) - set(self.parameters)
        if unknown:
            raise ValueError(f"{self.name}: no such parameter(s) {sorted(unknown)}; it has {sorted(self.parameters)}")
        values = {name: parameter.default for name, parameter in self.parameters.items()}
        for name, value in overrides.items():
            kind = _TYPES[self.parameters[name].type]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise ValueError(f"{self.name}: parameter {name} must be {self.parameters[name].type}, not {value!r}")
            values[name] = value
        return values

    @property
    def tables(self) -> list[str]:
        return [*POSTURE_TABLES, *(SIGN_IN_TABLES if self.usageLookback else ())]


class PostureCatalog(RuleCatalog[PostureCheck]):
    kind = "posture checks"


class PostureCatalogError(RuleFileError):
    title = "posture checks are invalid"


def load_checks(directory: Path = CHECKS_DIR) -> PostureCatalog:
    problems: list[str] = []
    loaded: list[tuple[Path, PostureCheck]] = []
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise PostureCatalogError([f"{directory}: no posture check files (*.yaml)"])
    for path in files:
        check = parse_rule_file(path, PostureCheck, problems)
        if check is not None:
            loaded.append((path, check))
    problems.extend(duplicate_ids(loaded))
    if problems:
        raise PostureCatalogError(problems)
    return PostureCatalog(loaded)


def unknown_keys(model: type[BaseModel], value: Any, at: str = "") -> list[str]:
    """Keys of `value` that `model` (recursively) does not declare: the directory models ignore
    extra keys, as Graph adds fields, but a test fragment with a typo would prove nothing."""
    if not isinstance(value, dict):
        return []
    found = []
    for key, item in value.items():
        field = model.model_fields.get(key)
        where = f"{at}.{key}" if at else key
        if field is None:
            found.append(where)
            continue
        inner = _model_in(field.annotation)
        if inner is None:
            continue
        items = item if isinstance(item, list) else [item]
        for number, element in enumerate(items):
            found += unknown_keys(inner, element, f"{where}.{number}" if isinstance(item, list) else where)
    return found


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (list, Union, UnionType):
        for arg in get_args(annotation):
            inner = _model_in(arg)
            if inner is not None:
                return inner
    return None
