"""Send the owner notices an inventory calls for, each once per credential, concern and recipient.

Intent first: an email's items are recorded in flight before it is sent and as sent after (see
shared/store/notices.py). A failed send leaves them for the next run; one that may have gone (no answer in
time, or a run that stopped in between) is never repeated, and the run's errors say so. Before each email
the run renews its lease: a run that lost it stops there, and the run that holds it sends the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from shared.notices.plan import NoticePlan, NoticeSettings, Unnotified, plan_notices
from shared.notices.render import notice_email
from shared.notices.send import NoticeSender
from shared.notify.port import DeliveryUncertain, NotificationError
from shared.posture.model import CredentialRecord
from shared.store.notices import NoticeKey
from shared.store.tables import TableFindingStore
from shared.text import moment, plural

MAX_ITEMS = 200  # credentials in one email at most; the rest go with the next run


@dataclass
class NoticeOutcome:
    sent: dict[str, int] = field(default_factory=dict)  # recipient -> concerns told
    errors: dict[str, str] = field(default_factory=dict)
    unowned: list[Unnotified] = field(default_factory=list)


def _keys(notice_items, recipient: str) -> list[NoticeKey]:
    return [(item.key, item.concern, recipient.lower()) for item in notice_items]


def pending_notices(store: TableFindingStore, records: Sequence[CredentialRecord], now: datetime,
                    settings: NoticeSettings) -> NoticePlan:
    """The notices not sent yet (nor possibly sent), and the applications with nobody to tell."""
    plan = plan_notices(records, now, settings)
    recorded = store.sent_notices({item.key for notice in plan.notices for item in notice.items})
    for notice in plan.notices:
        notice.items = [item for item in notice.items
                        if (item.key, item.concern, notice.recipient.lower()) not in recorded][:MAX_ITEMS]
    plan.notices = [notice for notice in plan.notices if notice.items]
    return plan


class OwnerNotices:
    def __init__(self, sender: NoticeSender, settings: NoticeSettings) -> None:
        self.sender = sender
        self.settings = settings

    def send(self, store: TableFindingStore, records: Sequence[CredentialRecord], now: datetime, run_id: str,
             keep_lease: Callable[[], None]) -> NoticeOutcome:
        """Send what is due; `keep_lease` is called before each email and raises when the run lost its lease."""
        outcome = NoticeOutcome()
        for recipient, at, items in store.settle_notices():
            outcome.errors[f"notice:{recipient}"] = (
                f"the owner notice of {moment(at)} to {recipient} ({plural(items, 'item')}) may not have arrived: "
                "the audit stopped between sending it and recording it, and sendMail cannot be asked; "
                "it is not sent again")
        plan = pending_notices(store, records, now, self.settings)
        outcome.unowned = plan.unowned
        for notice in plan.notices:
            keep_lease()
            keys = _keys(notice.items, notice.recipient)
            notice_id = f"{run_id}-{hashlib.sha256(notice.recipient.lower().encode()).hexdigest()[:12]}"
            content = notice_email(notice, now, self.settings.unused_for, self.settings.days)
            store.begin_notice(notice_id, notice.recipient, keys, now)
            try:
                self.sender.send_notice(notice.recipient, content, now)
            except DeliveryUncertain as error:
                store.notice_sent(notice_id, keys, now, state="uncertain")
                outcome.errors[f"notice:{notice.recipient}"] = str(error)
                continue
            except NotificationError as error:
                store.notice_failed(notice_id)
                outcome.errors[f"notice:{notice.recipient}"] = str(error)
                continue
            store.notice_sent(notice_id, keys, now)
            outcome.sent[notice.recipient] = len(keys)
        return outcome
