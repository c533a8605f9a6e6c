"""The latest credential inventory: one row per credential, replaced whole by each audit.

Table `<prefix>credentials`:

- Pointer row: PartitionKey `current`, RowKey `pointer`: the snapshot id readers use, its
  `taken_at` and `count`. Flipping it is one conditional write (ETag), so readers see either the
  whole old inventory or the whole new one, never a mix.
- Snapshot registry: PartitionKey `snapshots`, RowKey = snapshot id, written *before* the
  snapshot's rows, so a snapshot left behind by a crash is found and removed by the next replace.
- Credential rows: PartitionKey `s~<snapshot id>` (one partition per snapshot), RowKey
  `<end>_<identity key>`: `<end>` is the expiry as `YYYYMMDDhhmmss` UTC (`99999999999999` for no
  end date), so a partition reads soonest expiry first, and `<identity key>` is
  `k~<principal id>_<application|servicePrincipal>_<key id>` (hashed when not key-safe, see
  keys.py). Columns: the CredentialRecord as JSON (`record`) plus the filter columns
  `privileged`, `usage_known`, `managed` (bools) and `used_key` (last use as `YYYYMMDDhhmmss`, `-`
  if none seen).

The snapshot id is `<inverted taken_at>_<random>`. replace_inventory writes the registry row, then
the rows (entity group transactions of at most 100 in the snapshot's partition, see batch.py), then
flips the pointer, then deletes every older snapshot. Interrupted anywhere, the pointer still
names a complete snapshot; the leftovers go with the next replace.

Queries read the current snapshot's single partition. The inventory is one row per credential
(thousands, not millions) and is read whole by the digest anyway, so a per-snapshot partition scan
is the right cost: `expiring_within` is a RowKey range (rows are ordered by expiry), and
`privileged` and `unused_for` are parameterised filters on the row's own columns evaluated by the
service, so only matching rows come back. Paging is by RowKey; the continuation token
(keys.encode_continuation: HMAC-signed, bound to the store's secret and to the filters) also names
the snapshot, so a token outliving its snapshot is refused instead of skipping or repeating rows.
Filters are relative to the snapshot's `taken_at` (the time its status and days_to_expiry describe).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.data.tables import TableClient, UpdateMode

from shared.posture.model import CredentialRecord
from shared.store.base import StoreBase
from shared.store.batch import delete, submit
from shared.store.codec import plain_datetime
from shared.store.keys import (
    InvalidContinuation,
    decode_continuation,
    encode_continuation,
    inverted_time,
    key_part,
    query_digest,
    utc,
)
from shared.store.trim import PROPERTY_UNITS

POINTER = ("current", "pointer")
REGISTRY = "snapshots"
NO_END = "99999999999999"
NEVER_USED = "-"
MAX_LIMIT = 1000
FLIP_ATTEMPTS = 5
_SELECT = ["RowKey", "record"]


class InventoryConflict(RuntimeError):
    """Another writer kept replacing the inventory; this replace gave up (its snapshot was removed)."""


def is_managed(record: CredentialRecord) -> bool:
    """A managed identity's own certificate: Azure rotates it and no sign-in names it, so never "unused"."""
    return record.principal_type == "managed identity"


def moment_key(value: datetime) -> str:
    """`YYYYMMDDhhmmss` in UTC: sorts as the time does (years 1-9999)."""
    value = utc(value)
    return f"{value.year:04d}{value:%m%d%H%M%S}"


def identity_key(record: CredentialRecord) -> str:
    return key_part("k", f"{record.principal_id}_{record.held_on}_{record.key_id}")


def row_key(record: CredentialRecord) -> str:
    return f"{moment_key(record.end) if record.end else NO_END}_{identity_key(record)}"


def _record_json(record: CredentialRecord) -> tuple[str, bool]:
    """The record as JSON within one property; long owner/reason lists are cut (and flagged) if they must be."""
    text = record.model_dump_json()
    if len(text) <= PROPERTY_UNITS:
        return text, False
    for keep in (200, 50, 10, 0):
        cut = record.model_copy(update={"owners": record.owners[:keep],
                                        "privileged_reasons": [r[:500] for r in record.privileged_reasons[:keep]],
                                        "display_name": (record.display_name or "")[:1000] or None,
                                        "principal_name": record.principal_name[:1000],
                                        "subject": (record.subject or "")[:2000] or None})
        text = cut.model_dump_json()
        if len(text) <= PROPERTY_UNITS:
            return text, True
    raise ValueError(f"credential {record.key_id!r} of {record.principal_id!r} does not fit a table row")


def credential_entity(partition: str, record: CredentialRecord) -> dict[str, Any]:
    text, trimmed = _record_json(record)
    return {"PartitionKey": partition, "RowKey": row_key(record), "record": text, "trimmed": trimmed,
            "principal_id": record.principal_id[:1000], "privileged": record.privileged,
            "usage_known": record.usage_known, "status": record.status, "managed": is_managed(record),
            "used_key": moment_key(record.last_used) if record.last_used else NEVER_USED}


class CredentialInventory(StoreBase):
    """replace_inventory / query_credentials; mixed into TableFindingStore."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.credentials = self.service.get_table_client(f"{self.prefix}credentials")

    @property
    def tables(self) -> tuple[TableClient, ...]:
        return (*super().tables, self.credentials)

    # --- writing ---------------------------------------------------------------------------------

    def replace_inventory(self, records: Sequence[CredentialRecord], taken_at: datetime) -> str:
        """Make `records` the stored inventory as of `taken_at`; returns the new snapshot id.

        Rows that are not in `records` are gone afterwards. Readers see the old inventory until the
        pointer flips to the complete new one. A record repeated (same identity, object, key id)
        is stored once, the last one winning.
        """
        taken_at = utc(taken_at)
        snapshot = f"{inverted_time(taken_at)}_{secrets.token_hex(4)}"
        partition = f"s~{snapshot}"
        rows = {row_key(record): credential_entity(partition, record) for record in records}
        self.credentials.upsert_entity({"PartitionKey": REGISTRY, "RowKey": snapshot, "taken_at": taken_at},
                                       mode=UpdateMode.REPLACE)
        groups = [(key, [("upsert", entity, {"mode": UpdateMode.REPLACE})]) for key, entity in sorted(rows.items())]
        submit(self.credentials, groups, self.transactions)
        if not self._flip(snapshot, taken_at, len(rows)):
            self._drop_snapshots([snapshot])
            raise InventoryConflict("another audit replaced the credential inventory with a newer one meanwhile")
        self._drop_snapshots(self._older_snapshots(snapshot, taken_at))
        return snapshot

    def _flip(self, snapshot: str, taken_at: datetime, count: int) -> bool:
        """Point readers at `snapshot` unless a newer inventory is already current; False if it is."""
        pointer = {"PartitionKey": POINTER[0], "RowKey": POINTER[1], "snapshot": snapshot, "taken_at": taken_at,
                   "count": count}
        for _ in range(FLIP_ATTEMPTS):
            current = self._get(self.credentials, *POINTER)
            try:
                if current is None:
                    self.credentials.create_entity(pointer)
                    return True
                if utc(current["taken_at"]) > taken_at:
                    return False
                self.credentials.update_entity(pointer, mode=UpdateMode.REPLACE, etag=current.metadata["etag"],
                                               match_condition=MatchConditions.IfNotModified)
                return True
            except ResourceExistsError:
                continue
            except HttpResponseError as error:
                if error.status_code not in (404, 409, 412):
                    raise
        return False

    def _older_snapshots(self, current: str, taken_at: datetime) -> list[str]:
        """Registered snapshots other than `current` taken at or before it (a newer one may be being written)."""
        rows = self._query(self.credentials, "PartitionKey eq @pk", {"pk": REGISTRY}, select=["RowKey", "taken_at"])
        return [row["RowKey"] for row in rows if row["RowKey"] != current and utc(row["taken_at"]) <= taken_at]

    def _drop_snapshots(self, snapshots: Sequence[str]) -> None:
        """Delete the snapshots' rows, then their registry rows (so a crash here is retried next time)."""
        for snapshot in snapshots:
            rows = self._query(self.credentials, "PartitionKey eq @pk", {"pk": f"s~{snapshot}"}, select=["RowKey"])
            delete(self.credentials, [(f"s~{snapshot}", row["RowKey"]) for row in rows], self.transactions)
            delete(self.credentials, [(REGISTRY, snapshot)], self.transactions)

    # --- reading ---------------------------------------------------------------------------------

    def inventory_snapshot(self) -> tuple[str, datetime, int] | None:
        """(snapshot id, taken_at, number of credentials) of the stored inventory, or None before the first."""
        pointer = self._get(self.credentials, *POINTER)
        if pointer is None:
            return None
        return pointer["snapshot"], utc(plain_datetime(pointer["taken_at"])), int(pointer.get("count", 0))

    def query_credentials(self, expiring_within: timedelta | None = None, unused_for: timedelta | None = None,
                          privileged: bool | None = None, limit: int = 100,
                          continuation: str | None = None) -> tuple[list[CredentialRecord], str | None]:
        """Credentials of the stored inventory, soonest expiry first, and a token for the next page (or None).

        Relative to the inventory's taken_at (to the second): `expiring_within` keeps credentials not
        yet expired (end after taken_at) whose end is before taken_at + expiring_within; `unused_for`
        keeps credentials not used since taken_at - unused_for (never-seen ones only when the logs
        covered that horizon, usage_known; managed identities' own certificates never, as no sign-in
        names them); `privileged` keeps those that are (True) or are not (False). ValueError for a bad
        limit or a negative span; InvalidContinuation (a ValueError) for a token this store did not
        issue for these filters, or one issued for an inventory that has since been replaced.
        """
        if not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_LIMIT}")
        for name, span in (("expiring_within", expiring_within), ("unused_for", unused_for)):
            if span is not None and span < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        digest = query_digest("credentials", expiring_within=expiring_within, unused_for=unused_for,
                              privileged=privileged)
        position = decode_continuation(self._secret(), digest, continuation) if continuation else None
        current = self.inventory_snapshot()
        if position is not None:
            snapshot, _, after = position.partition("|")
            if current is None or current[0] != snapshot:
                raise InvalidContinuation("the credential inventory was replaced since this continuation token was "
                                          "issued; request the first page again")
        else:
            after = ""
        if current is None:
            return [], None
        snapshot, taken_at, _ = current
        query, parameters = self._filter(snapshot, taken_at, after, expiring_within, unused_for, privileged)
        page: list[tuple[str, CredentialRecord]] = []
        for row in self._query(self.credentials, query, parameters, select=_SELECT,
                               results_per_page=min(MAX_LIMIT, limit + 1)):
            if len(page) == limit:
                token = encode_continuation(self._secret(), digest, f"{snapshot}|{page[-1][0]}")
                return [record for _, record in page], token
            page.append((row["RowKey"], CredentialRecord.model_validate_json(row["record"])))
        return [record for _, record in page], None

    def all_credentials(self) -> list[CredentialRecord]:
        """The whole stored inventory, soonest expiry first ([] before the first audit stored one)."""
        records: list[CredentialRecord] = []
        token: str | None = None
        while True:
            page, token = self.query_credentials(limit=MAX_LIMIT, continuation=token)
            records += page
            if token is None:
                return records

    @staticmethod
    def _filter(snapshot: str, taken_at: datetime, after: str, expiring_within: timedelta | None,
                unused_for: timedelta | None, privileged: bool | None) -> tuple[str, dict[str, Any]]:
        """Fixed filter text with every value a parameter (the SDK quotes them; it finds `@name` between spaces)."""
        clauses = ["PartitionKey eq @pk", "RowKey gt @after"]
        parameters: dict[str, Any] = {"pk": f"s~{snapshot}", "after": after}
        if expiring_within is not None:
            clauses += ["RowKey gt @from", "RowKey lt @to"]
            parameters["from"] = f"{moment_key(taken_at)}_~"  # after every row ending at taken_at: expired
            parameters["to"] = moment_key(_clamped(taken_at, expiring_within))
        if unused_for is not None:
            clauses += ["managed eq false", "used_key lt @cutoff", "( usage_known eq true or used_key ne @never )"]
            parameters["cutoff"] = moment_key(_clamped(taken_at, -unused_for))
            parameters["never"] = NEVER_USED
        if privileged is not None:
            clauses.append("privileged eq @privileged")
            parameters["privileged"] = privileged
        return " and ".join(clauses), parameters


def _clamped(moment: datetime, span: timedelta) -> datetime:
    """moment + span, held within the years datetime can express."""
    try:
        return moment + span
    except OverflowError:
        return datetime.max.replace(tzinfo=moment.tzinfo) if span > timedelta(0) else \
            datetime.min.replace(tzinfo=moment.tzinfo)

