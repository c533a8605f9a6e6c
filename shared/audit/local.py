"""The product on one machine: the findings store in Azurite (unless the settings name one) and the
sample tenant's pipeline with a fixed clock, its logs in the embedded engine, outbox notifiers and notices."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from shared.audit.build import azure_credential
from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.embedded import EmbeddedLogSource
from shared.notices.plan import NoticeSettings
from shared.notices.run import OwnerNotices
from shared.notices.send import OutboxNoticeSender
from shared.notify.outbox import OutboxNotifier
from shared.sample_tenant.manifest import Manifest
from shared.settings import read_setting
from shared.store.tables import TableFindingStore
from shared.suppressions.load import configured_suppressions

WORKSPACE = Path(".wiaudit")
CHANNELS = ("teams", "email")


@contextmanager
def local_store(channels: Sequence[str] = CHANNELS, workspace: Path = WORKSPACE,
                environ: Mapping[str, str] | None = None) -> Iterator[TableFindingStore]:
    """The store the settings name; without one, Azurite keeping its data in `workspace/azurite`."""
    if read_setting("FINDINGS_CONNECTION_STRING", environ) or read_setting("FINDINGS_TABLE_ENDPOINT", environ):
        credential = None if read_setting("FINDINGS_CONNECTION_STRING", environ) else azure_credential(environ)
        store = TableFindingStore.from_settings(credential, environ, channels=channels)
        store.ensure_tables()
        yield store
        return
    from azure.data.tables import TableServiceClient

    from shared.local.azurite import AzuriteTable

    with AzuriteTable(location=workspace / "azurite") as azurite:
        store = TableFindingStore(TableServiceClient.from_connection_string(azurite.connection_string),
                                  channels=channels)
        store.ensure_tables()
        yield store


def sample_pipeline(tenant: Path, source: EmbeddedLogSource, store: TableFindingStore, outbox: Path,
                    progress: Callable[[str], None]) -> AuditPipeline:
    """The sample tenant audited as production would be, with its clock fixed at the tenant's 'now'; the digests
    and the owner notices (always on here) are written to `outbox`."""
    manifest = Manifest.load(tenant / "manifest.json", load_catalog())
    notifiers = [OutboxNotifier(None, outbox, channel=channel) for channel in CHANNELS]
    notices = OwnerNotices(OutboxNoticeSender(outbox), replace(NoticeSettings.from_settings(), enabled=True))
    return AuditPipeline(list(load_catalog()), source, SnapshotFileDirectory(tenant / "directory.json"), store,
                         notifiers, clock=lambda: manifest.now_time,
                         config=AuditConfig(public_base_url=read_setting("PUBLIC_BASE_URL")), progress=progress,
                         suppressions=configured_suppressions(), notices=notices)
