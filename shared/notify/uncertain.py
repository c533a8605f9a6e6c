"""What a digest says about earlier digests that may not have arrived.

Teams Workflows webhooks and Graph sendMail take no idempotency key and cannot be asked whether a message
arrived, so a digest whose delivery was not confirmed is never sent again (that could repeat it): the next
digest names it instead, with the reason, so nobody waits for findings that never came.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.notify.port import DigestSection
from shared.store.model import PendingDelivery
from shared.text import moment, plural

TITLE = "An earlier digest may not have arrived"
FINDINGS = "/api/findings"


def uncertain_section(deliveries: Sequence[PendingDelivery]) -> list[DigestSection]:
    """One line per earlier digest that may not have arrived, oldest first; no section when there is none."""
    if not deliveries:
        return []
    lines = [f"The digest of {moment(delivery.attempted_at)} ({plural(delivery.findings, 'finding')}) may not have "
             f"arrived: {delivery.reason.rstrip('.')}. Its findings are not repeated here; {FINDINGS} lists them."
             for delivery in deliveries]
    return [DigestSection(title=TITLE, lines=lines, severity="Medium")]
