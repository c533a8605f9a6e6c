"""A triage made in the API or on the web pages goes to Log Analytics at once, not only with the next audit.

The triage queues its change in the store's outbox before it writes the finding (shared/store/findings.py); once the
response is made, a background task delivers the outbox with `deliver_unless_audit` (shared/export/deliver.py),
which takes the audit lease without waiting. If an audit holds it, the change stays queued and that audit's
delivery sends it (it reads the outbox again after each upload until nothing new is pending); only a triage made in
the instant between that last read and the end of the run waits for the next audit or triage. A failed
delivery (Log Analytics unreachable, a setting wrong) also leaves the change queued: it is logged, never shown to
the person who triaged, whose change is saved either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from shared.export.deliver import deliver_unless_audit
from shared.text import plural

if TYPE_CHECKING:
    from shared.export.ingestion import LogsIngestionSink
    from shared.store.tables import TableFindingStore

log = logging.getLogger(__name__)

SinkFactory = Callable[[], "LogsIngestionSink | None"]


def deliver_after_triage(store: TableFindingStore, sink: SinkFactory) -> None:
    """Send the pending changes of findings now, when findings go to Log Analytics; never raises."""
    try:
        target = sink()
        if target is None:
            return
        report = deliver_unless_audit(store, target)
    except Exception:
        log.exception("the triage stays queued for Log Analytics: delivering it failed")
        return
    if report is None:
        log.info("the triage stays queued for Log Analytics: an audit is running and sends it")
    elif report.pending:
        log.warning("%s not accepted by Log Analytics, kept for the next delivery: %s",
                    plural(report.pending, "finding change"), report.reason)
