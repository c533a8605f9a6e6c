"""The shape of a catalog detection: a Microsoft Sentinel scheduled analytic rule plus
its own tests, declared parameters and the lookback its query reads before the window.

Unknown keys are refused, so a typo such as `sevrity:` fails instead of being ignored.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.catalog.attack import technique_ids
from shared.severity import Severity
from shared.timespan import parse_timespan

TACTICS = (
    "Reconnaissance", "ResourceDevelopment", "InitialAccess", "Execution", "Persistence",
    "PrivilegeEscalation", "DefenseEvasion", "CredentialAccess", "Discovery", "LateralMovement",
    "Collection", "Exfiltration", "CommandAndControl", "Impact",
)
Tactic = Literal[TACTICS]  # type: ignore[valid-type]
PRINCIPAL_IDENTIFIERS = ("Account.AadUserId", "CloudApplication.AppId", "Account.Name", "CloudApplication.Name")
NAME_IDENTIFIERS = ("CloudApplication.Name", "Account.Name", "Account.DisplayName")
SENTINEL_MAX_PERIOD = timedelta(days=14)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConnector(Strict):
    connectorId: str
    dataTypes: list[str] = Field(min_length=1)


class FieldMapping(Strict):
    identifier: str
    columnName: str


class EntityMapping(Strict):
    entityType: str
    fieldMappings: list[FieldMapping] = Field(min_length=1)


class AlertDetails(Strict):
    """Sentinel's alertDetailsOverride; `{{Column}}` is replaced by the row's value."""

    alertDisplayNameFormat: str | None = None
    alertDescriptionFormat: str | None = None


class Parameter(Strict):
    """A threshold or baseline the query reads as a `let` name; users may override the default.

    `defaultFrom` takes the default from the tier model (shared/directory/tiers/) instead of the rule:
    `applicationPermissions` gives the tier-0 application permission names, `directoryRoles` the tier-0
    Entra role display names. Give exactly one of `default` and `defaultFrom`.
    """

    type: Literal["timespan", "int", "real", "string", "dynamic"]
    default: Any = None
    defaultFrom: Literal["applicationPermissions", "directoryRoles"] | None = None
    description: str

    @model_validator(mode="after")
    def _one_default(self) -> Parameter:
        has_default = "default" in self.model_fields_set
        if has_default == (self.defaultFrom is not None):
            raise ValueError("give exactly one of default and defaultFrom")
        if self.defaultFrom is not None and self.type != "dynamic":
            raise ValueError(f"defaultFrom gives a list: the parameter's type must be dynamic, not {self.type}")
        return self


class TestWindow(Strict):
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> TestWindow:
        if self.end <= self.start:
            raise ValueError("window end must be after its start")
        return self


class DetectionTest(Strict):
    """Input rows per table and the rows the query must return (an empty list: it stays silent)."""

    name: str
    window: TestWindow
    rows: dict[str, list[dict[str, Any]]]
    expect: list[dict[str, Any]]
    parameters: dict[str, Any] = Field(default_factory=dict)


class Detection(Strict):
    id: str
    name: str
    description: str
    remediation: str | None = Field(None, description="What to do about a finding: required for High and Medium")
    severity: Severity
    requiredDataConnectors: list[DataConnector] = Field(min_length=1)
    queryFrequency: str
    queryPeriod: str
    lookback: str = "0d"
    triggerOperator: Literal["gt"] = "gt"
    triggerThreshold: int = 0
    tactics: list[Tactic] = Field(min_length=1)
    relevantTechniques: list[str] = Field(min_length=1)
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    query: str
    entityMappings: list[EntityMapping] = Field(min_length=1)
    alertDetailsOverride: AlertDetails | None = None
    severityWhenPrivileged: Severity | None = None  # raised to this when the directory says the principal is privileged
    version: str = "1.0.0"
    kind: Literal["Scheduled"] = "Scheduled"
    tests: list[DetectionTest] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _guid(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", value):
            raise ValueError(f"{value!r} is not a lower-case GUID")
        return value

    @field_validator("queryFrequency", "queryPeriod", "lookback")
    @classmethod
    def _timespan(cls, value: str) -> str:
        parse_timespan(value)
        return value

    @field_validator("relevantTechniques")
    @classmethod
    def _techniques(cls, values: list[str]) -> list[str]:
        return technique_ids(values)

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, values: dict[str, Parameter]) -> dict[str, Parameter]:
        bad = [name for name in values if not IDENTIFIER.match(name)]
        if bad:
            raise ValueError(f"parameter names must be KQL identifiers: {bad}")
        return values

    @field_validator("query")
    @classmethod
    def _time_contract(cls, value: str) -> str:
        if re.search(r"\b(now|ago)\s*\(", value):
            raise ValueError("use WindowStart/WindowEnd, never now() or ago(): a catch-up run must "
                             "give the same answer as the run that was missed")
        return value

    @model_validator(mode="after")
    def _period_covers_window_and_lookback(self) -> Detection:
        if self.period > SENTINEL_MAX_PERIOD:
            raise ValueError(f"queryPeriod {self.queryPeriod} is over Sentinel's maximum of 14d")
        if self.period < self.frequency + self.lookback_span:
            raise ValueError(f"queryPeriod {self.queryPeriod} must cover queryFrequency {self.queryFrequency} "
                             f"plus lookback {self.lookback}: the query reads that far back")
        return self

    @model_validator(mode="after")
    def _maps_a_principal(self) -> Detection:
        if not any(key in self.entity_columns() for key in PRINCIPAL_IDENTIFIERS):
            raise ValueError("entityMappings: map the workload identity as one of " + ", ".join(PRINCIPAL_IDENTIFIERS))
        return self

    @model_validator(mode="after")
    def _firing_and_silent(self) -> Detection:
        if not any(test.expect for test in self.tests):
            raise ValueError("tests: needs at least one case that fires (a non-empty expect)")
        if not any(not test.expect for test in self.tests):
            raise ValueError("tests: needs at least one case that stays silent (expect: [])")
        return self

    @property
    def frequency(self) -> timedelta:
        return parse_timespan(self.queryFrequency)

    @property
    def period(self) -> timedelta:
        return parse_timespan(self.queryPeriod)

    @property
    def lookback_span(self) -> timedelta:
        return parse_timespan(self.lookback)

    @property
    def tables(self) -> list[str]:
        return [table for connector in self.requiredDataConnectors for table in connector.dataTypes]

    def entity_columns(self) -> dict[str, str]:
        """`EntityType.Identifier` -> the output column that holds it."""
        return {f"{entity.entityType}.{field.identifier}": field.columnName
                for entity in self.entityMappings for field in entity.fieldMappings}

    @property
    def principal_column(self) -> str:
        """The output column holding the workload identity the finding is about."""
        columns = self.entity_columns()
        return next(columns[key] for key in PRINCIPAL_IDENTIFIERS if key in columns)

    @property
    def principal_name_column(self) -> str | None:
        columns = self.entity_columns()
        return next((columns[key] for key in NAME_IDENTIFIERS if key in columns), None)
