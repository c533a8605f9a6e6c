"""Owner notices from the app settings: off unless OWNER_NOTICES is true; then sent from MAIL_SENDER."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.notices.plan import NoticeSettings
from shared.notices.run import OwnerNotices
from shared.notices.send import GraphNoticeSender
from shared.settings import SettingsError, read_setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def owner_notices_from_settings(credential: TokenCredential | None,
                                environ: Mapping[str, str] | None = None) -> OwnerNotices | None:
    settings = NoticeSettings.from_settings(environ)
    if not settings.enabled:
        return None
    if not read_setting("MAIL_SENDER", environ):
        raise SettingsError("setting OWNER_NOTICES is true but MAIL_SENDER is not set: owner notices are sent from "
                            "the digest's mailbox")
    if credential is None:
        raise SettingsError("OWNER_NOTICES is true, but there is no credential to call Microsoft Graph")
    from shared.notify.mail import mailbox_from_settings

    return OwnerNotices(GraphNoticeSender(mailbox_from_settings(credential, environ)), settings)
