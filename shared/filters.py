"""The finding filters people type (CLI `findings list`, API `GET /api/findings`), resolved by the one name
resolver to what the store keys on: a detection id, a service principal object id.

A name the catalog or the inventory does not know is still accepted when stored findings carry it as is (the
findings of a rule since removed, an identity without credentials in the inventory); otherwise it is an error
naming it, never an empty list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from shared.identities import inventory_identities, resolve_identity
from shared.names import AmbiguousName, Named, UnknownName, resolve

if TYPE_CHECKING:
    from shared.store.tables import TableFindingStore


def stored_detection(store: TableFindingStore, name: str, rules: Sequence[Named]) -> str:
    try:
        return resolve(name, rules, "detection").id
    except AmbiguousName:
        raise
    except UnknownName as error:
        return _as_stored(store, name, error, detection=name)


def stored_principal(store: TableFindingStore, name: str) -> str:
    try:
        return resolve_identity(name, inventory_identities(store.all_credentials())).id
    except AmbiguousName:
        raise
    except UnknownName as error:
        return _as_stored(store, name, error, principal=name)


def _as_stored(store: TableFindingStore, name: str, error: UnknownName, **filters: str) -> str:
    found, _ = store.query_findings(limit=1, **filters)
    if found:
        return name
    raise UnknownName(f"{error}: no stored finding names it either") from None
