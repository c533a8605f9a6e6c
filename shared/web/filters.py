"""The filters of the web pages, read from the query string: resolved the way the API resolves them (the one
name resolver, the store's severity and status names, the inventory's spans) and refused per field with a
message the page shows beside the form, never as an empty list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from shared.filters import stored_detection, stored_principal
from shared.names import Named
from shared.severity import severity_rank
from shared.store.model import check_status

if TYPE_CHECKING:
    from shared.store.tables import TableFindingStore

FINDING_FIELDS = ("severity", "status", "detection", "principal", "since", "until")
CREDENTIAL_FIELDS = ("expiring_within", "unused_for", "privileged")


@dataclass
class Filters:
    """`given`: the non-empty fields as typed (for the form and the next page's link); `query`: the store's
    keyword arguments; `errors`: field -> what is wrong with it."""

    given: dict[str, str]
    query: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def read_filters(params: Mapping[str, str], store: TableFindingStore, rules: Sequence[Named]) -> Filters:
    """The findings filters: minimum severity, status, detection, identity, last detected from/to (UTC days)."""
    filters = Filters(_given(params, FINDING_FIELDS))
    given, query, errors = filters.given, filters.query, filters.errors
    for name, read in (("severity", _severity), ("status", check_status),
                       ("detection", lambda text: stored_detection(store, text, rules)),
                       ("principal", lambda text: stored_principal(store, text)),
                       ("since", _day_start), ("until", lambda text: _day_start(text) + timedelta(days=1))):
        if name in given:
            try:
                query[{"severity": "min_severity"}.get(name, name)] = read(given[name])
            except (KeyError, ValueError) as error:
                errors[name] = str(error).strip("'\"")
    if not errors and query.get("since") and query.get("until") and query["since"] >= query["until"]:
        errors["until"] = "the last day must not be before the first"
    return filters


def read_credential_filters(params: Mapping[str, str]) -> Filters:
    """The inventory filters: expiring within, unused for (spans such as 30d), privileged (yes / no)."""
    from shared.posture.hygiene import parse_span

    filters = Filters(_given(params, CREDENTIAL_FIELDS))
    for name in ("expiring_within", "unused_for"):
        if name in filters.given:
            try:
                filters.query[name] = parse_span(filters.given[name])
            except ValueError as error:
                filters.errors[name] = str(error)
    if "privileged" in filters.given:
        choice = filters.given["privileged"]
        if choice not in ("yes", "no"):
            filters.errors["privileged"] = "choose yes or no"
        else:
            filters.query["privileged"] = choice == "yes"
    return filters


def _given(params: Mapping[str, str], names: Sequence[str]) -> dict[str, str]:
    return {name: value.strip()[:1000] for name in names if (value := params.get(name) or "").strip()}


def _severity(text: str) -> str:
    severity_rank(text)
    return text


def _day_start(text: str) -> datetime:
    try:
        return datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
    except ValueError:
        raise ValueError(f"{text} is not a day such as 2026-03-14") from None
