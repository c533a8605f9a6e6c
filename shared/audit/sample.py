"""The sample tenant's audit: the production pipeline with the tenant's fixed clock, its logs in the embedded
engine, its directory snapshot, outbox notifiers and owner notices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shared.audit.build import disabled_rules
from shared.audit.local import CHANNELS
from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.embedded import EmbeddedLogSource
from shared.notices.plan import NoticeSettings
from shared.notices.run import OwnerNotices
from shared.notices.send import OutboxNoticeSender
from shared.notify.outbox import OutboxNotifier
from shared.posture.catalog import load_checks
from shared.sample_tenant.manifest import Manifest
from shared.settings import read_setting
from shared.store.tables import TableFindingStore
from shared.suppressions.load import configured_suppressions


def sample_pipeline(tenant: Path, source: EmbeddedLogSource, store: TableFindingStore, outbox: Path,
                    progress: Callable[[str], None]) -> AuditPipeline:
    """The sample tenant audited as production would be, with its clock fixed at the tenant's 'now'; the digests
    and the owner notices (always on here) are written to `outbox`."""
    manifest = Manifest.load(tenant / "manifest.json", load_catalog())
    notifiers = [OutboxNotifier(None, outbox, channel=channel) for channel in CHANNELS]
    notices = OwnerNotices(OutboxNoticeSender(outbox), replace(NoticeSettings.from_settings(), enabled=True))
    return AuditPipeline(list(load_catalog()), source, SnapshotFileDirectory(tenant / "directory.json"), store,
                         notifiers, clock=lambda: manifest.now_time,
                         config=AuditConfig(public_base_url=read_setting("PUBLIC_BASE_URL"),
                                            disabled=disabled_rules(load_catalog(), load_checks())),
                         progress=progress,
                         suppressions=configured_suppressions(), notices=notices)
