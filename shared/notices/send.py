"""Where owner notices go: through the digest's Graph sendMail adapter, or into the outbox folder.

Least privilege: the same mailbox and the same Mail.Send application permission as the digest email,
scoped to that mailbox with Exchange RBAC for Applications: a notice to any owner is mail *from* that
one mailbox, which the scope already covers. Nothing new is granted in Graph.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Protocol

from shared.notify.email import EmailContent
from shared.notify.mail import GraphMailbox
from shared.notify.outbox import file_stem, write_file
from shared.notify.port import NotificationError

TEXT_NAME = "credentials-to-act-on.txt"


class NoticeSender(Protocol):
    def send_notice(self, recipient: str, content: EmailContent, at: datetime) -> None:
        """Deliver one owner's notice, or raise NotificationError (DeliveryUncertain when it may have gone)."""


class GraphNoticeSender:
    """Owner notices from the digest's mailbox (MAIL_SENDER) through Graph sendMail."""

    def __init__(self, mail: GraphMailbox) -> None:
        self.mail = mail

    def send_notice(self, recipient: str, content: EmailContent, at: datetime) -> None:
        self.mail.send_email(content, [recipient], TEXT_NAME, f"the owner notice to {recipient}")


class OutboxNoticeSender:
    """Writes `<folder>/<day>-<recipient>-notice.html|.txt` (the demo: nothing leaves the machine)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.written: list[Path] = []

    def send_notice(self, recipient: str, content: EmailContent, at: datetime) -> None:
        stem = file_stem(f"{at:%Y-%m-%d}-{recipient}", "notice")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            for extension, text in (("html", content.html), ("txt", content.text)):
                path = self.folder / f"{stem}.{extension}"
                write_file(path, text)
                self.written.append(path)
        except OSError as error:
            raise NotificationError(f"could not write the owner notice to {self.folder}: {error}") from None
