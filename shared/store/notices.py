"""The owner notices already sent: each goes once per credential, concern (threshold) and recipient.

Table `<prefix>notices`:

- PartitionKey `c~<credential>` (application or service principal object id, where it is held, key id),
  RowKey `n~<concern>_<recipient>`: a notice that went out (`sent`), or may have (`uncertain`). Either way it
  is never sent again.
- PartitionKey `inflight`, RowKey `<notice id>`: the intent of one email, written before it is sent, with
  the items it carries; deleted once their rows are written. One still there at the next run belongs to a
  run that stopped between the two: the email may have gone, so its items are recorded `uncertain` and not
  sent again (no mail API here can be asked whether a message arrived), and the run says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from azure.data.tables import TableClient, UpdateMode

from shared.store.base import StoreBase
from shared.store.batch import delete, submit
from shared.store.keys import key_part, utc

INFLIGHT = "inflight"
NoticeKey = tuple[str, str, str]  # credential, concern, recipient (lower case)


def _row(key: NoticeKey, state: str, notice_id: str, at: datetime) -> dict[str, Any]:
    credential, concern, recipient = key
    return {"PartitionKey": key_part("c", credential), "RowKey": key_part("n", f"{concern}_{recipient}"),
            "credential": credential, "concern": concern, "recipient": recipient, "state": state,
            "notice": notice_id, "at": utc(at)}


class NoticeLog(StoreBase):
    """sent_notices / begin_notice / notice_sent / notice_failed; mixed into TableFindingStore."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices = self.service.get_table_client(f"{self.prefix}notices")

    @property
    def tables(self) -> tuple[TableClient, ...]:
        return (*super().tables, self.notices)

    def sent_notices(self, credentials: Iterable[str]) -> set[NoticeKey]:
        """The notices recorded (sent or uncertain) about these credentials."""
        found: set[NoticeKey] = set()
        for credential in sorted(set(credentials)):
            for row in self._query(self.notices, "PartitionKey eq @pk", {"pk": key_part("c", credential)},
                                   select=["credential", "concern", "recipient"]):
                if row["credential"] == credential:
                    found.add((row["credential"], row["concern"], row["recipient"]))
        return found

    def begin_notice(self, notice_id: str, recipient: str, keys: Sequence[NoticeKey], at: datetime) -> None:
        """Record the intent to send one email, before it is sent."""
        self.notices.upsert_entity({"PartitionKey": INFLIGHT, "RowKey": key_part("i", notice_id), "id": notice_id,
                                    "recipient": recipient, "items": json.dumps([list(key) for key in keys]),
                                    "at": utc(at)}, mode=UpdateMode.REPLACE)

    def notice_sent(self, notice_id: str, keys: Sequence[NoticeKey], at: datetime, state: str = "sent") -> None:
        """The email went (or, `uncertain`, may have): its items are never sent again."""
        groups = [(key, [("upsert", _row(key, state, notice_id, at), {"mode": UpdateMode.REPLACE})])
                  for key in sorted(set(keys))]
        submit(self.notices, groups, self.transactions)
        delete(self.notices, [(INFLIGHT, key_part("i", notice_id))], self.transactions)

    def notice_failed(self, notice_id: str) -> None:
        """The email certainly did not go: its items stay to be sent by the next run."""
        delete(self.notices, [(INFLIGHT, key_part("i", notice_id))], self.transactions)

    def settle_notices(self) -> list[tuple[str, str, int]]:
        """Record the emails an interrupted run left in flight as `uncertain`; returns (recipient, when, items)."""
        settled = []
        for row in self._query(self.notices, "PartitionKey eq @pk", {"pk": INFLIGHT}):
            keys = [tuple(item) for item in json.loads(row["items"])]
            self.notice_sent(row["id"], keys, utc(row["at"]), state="uncertain")  # type: ignore[arg-type]
            settled.append((row["recipient"], utc(row["at"]), len(keys)))
        return settled
