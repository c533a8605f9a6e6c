"""The notifiers the app settings ask for.

    TEAMS_WEBHOOK_URL set             -> TeamsNotifier ("teams")
    MAIL_SENDER and MAIL_TO set       -> GraphMailNotifier ("email"); one without the other is a SettingsError
    outbox folder given               -> each of them wrapped in an OutboxNotifier (a copy of what is sent);
                                         with no channel configured, outbox-only notifiers for both channels,
                                         so a local run still shows what would have gone out
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.notify.outbox import RENDERERS, OutboxNotifier
from shared.notify.port import Notifier
from shared.settings import SettingsError, read_setting, require_setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


def notifiers_from_settings(credential: TokenCredential | None, environ: Mapping[str, str] | None = None,
                            outbox: Path | None = None) -> list[Notifier]:
    """Teams and/or email notifiers from the settings (validated now, so a typo fails at start-up)."""
    notifiers: list[Notifier] = []
    webhook_url = read_setting("TEAMS_WEBHOOK_URL", environ)
    if webhook_url:
        from shared.notify.teams import TeamsNotifier

        try:
            notifiers.append(TeamsNotifier(webhook_url))
        except ValueError as error:  # the message never contains the URL
            raise SettingsError(f"setting TEAMS_WEBHOOK_URL: {error}") from None

    sender, recipients = read_setting("MAIL_SENDER", environ), read_setting("MAIL_TO", environ)
    if sender or recipients:
        require_setting("MAIL_TO" if sender else "MAIL_SENDER", environ)  # both or neither
        if credential is None:
            raise SettingsError("MAIL_SENDER and MAIL_TO are set, but there is no credential to call Microsoft Graph")
        from shared.notify.mail import mail_notifier_from_settings

        notifiers.append(mail_notifier_from_settings(credential, environ))

    if outbox is None:
        return notifiers
    if not notifiers:
        return [OutboxNotifier(None, outbox, channel=channel) for channel in RENDERERS]
    return [OutboxNotifier(notifier, outbox) for notifier in notifiers]
