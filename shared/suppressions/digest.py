"""The digest's note of expired suppressions: their findings are announced again when they fire, so the owner
should renew (with a new reason) or delete the file."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from shared.notify.port import DigestSection
from shared.suppressions.load import Suppressions


def expired_section(suppressions: Suppressions, now: datetime) -> DigestSection | None:
    expired = suppressions.expired(now)
    if not expired:
        return None
    return DigestSection(title="Expired suppressions", severity="Medium", lines=[
        f"{s.id} (owner {s.owner}) ended {s.until:%Y-%m-%d}: {s.reason.rstrip('.')}; renew it or delete "
        f"{Path(s.path).name}" for s in expired])
