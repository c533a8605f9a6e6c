"""The query text a detection runs: its window header and parameters, then its query.

The header is one line, so an engine's line numbers are the query's plus one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.catalog.model import Detection, Parameter
from shared.directory.tiers.lookup import tier_model
from shared.timespan import format_timespan, parse_timespan


def kql_datetime(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"datetime({moment.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z)"


def kql_literal(parameter: Parameter, value: Any) -> str:
    """A parameter value as a KQL literal of its declared type; ValueError when it is not one."""
    if parameter.type == "timespan":
        return format_timespan(parse_timespan(value))
    if parameter.type == "int":
        return str(int(value))
    if parameter.type == "real":
        return repr(float(value))
    if parameter.type == "string":
        return json.dumps(str(value))
    return f"dynamic({json.dumps(value)})"


def default_value(parameter: Parameter) -> Any:
    """The parameter's default: its own, or the tier model's tier-0 list (sorted, so the text is stable)."""
    if parameter.defaultFrom == "applicationPermissions":
        return tier_model().tier0_permissions()
    if parameter.defaultFrom == "directoryRoles":
        return tier_model().tier0_entra_roles()
    return parameter.default


def parameter_lets(detection: Detection, overrides: Mapping[str, Any] | None = None) -> str:
    overrides = overrides or {}
    unknown = set(overrides) - set(detection.parameters)
    if unknown:
        raise ValueError(f"{detection.name}: no such parameter(s) {sorted(unknown)}; "
                         f"it has {sorted(detection.parameters)}")
    return " ".join(f"let {name} = {kql_literal(parameter, overrides.get(name, default_value(parameter)))};"
                    for name, parameter in detection.parameters.items())


def header(detection: Detection, start: datetime, end: datetime,
           overrides: Mapping[str, Any] | None = None) -> str:
    """One line of `let`s: the window, then the parameters."""
    window = f"let WindowStart = {kql_datetime(start)}; let WindowEnd = {kql_datetime(end)};"
    return f"{window} {parameter_lets(detection, overrides)}".rstrip()


def render(detection: Detection, start: datetime, end: datetime,
           overrides: Mapping[str, Any] | None = None) -> str:
    return header(detection, start, end, overrides) + "\n" + detection.query
