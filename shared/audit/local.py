"""The findings store of the local commands: the one the settings name, or the project's Azurite.

It imports only what a store needs, so `wiaudit findings list` does not load the detection engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from shared.local.home import local_home
from shared.settings import read_setting
from shared.store.tables import TableFindingStore

CHANNELS = ("teams", "email")


@contextmanager
def local_store(channels: Sequence[str] = CHANNELS,
                environ: Mapping[str, str] | None = None) -> Iterator[TableFindingStore]:
    """The store the settings name; without one, the project's Azurite (started if it is not running), which
    keeps its data in the local home (see shared/local/home.py) and stays up for the next command."""
    if read_setting("FINDINGS_CONNECTION_STRING", environ) or read_setting("FINDINGS_TABLE_ENDPOINT", environ):
        from shared.audit.build import azure_credential

        credential = None if read_setting("FINDINGS_CONNECTION_STRING", environ) else azure_credential(environ)
        store = TableFindingStore.from_settings(credential, environ, channels=channels)
        store.ensure_tables()
        yield store
        return
    from azure.data.tables import TableServiceClient

    from shared.local.project_azurite import ProjectAzurite

    azurite = ProjectAzurite(local_home(environ)).ensure_running()
    store = TableFindingStore(TableServiceClient.from_connection_string(azurite.connection_string), channels=channels)
    store.ensure_tables()
    yield store
