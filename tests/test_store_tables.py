"""Store construction: settings, idempotent ensure_tables, table-name prefix checks."""

from __future__ import annotations

import pytest
from azure.identity import DefaultAzureCredential

from shared.settings import SettingsError
from shared.store import TableFindingStore


def test_from_settings_prefers_the_connection_string(azurite, table_prefix: str) -> None:
    store = TableFindingStore.from_settings(None, {"FINDINGS_CONNECTION_STRING": azurite.connection_string},
                                            prefix=table_prefix)
    store.ensure_tables()
    store.ensure_tables()  # idempotent, and the token secret is kept
    assert store.service.account_name == "devstoreaccount1"
    assert {t.table_name for t in store.tables} <= {t.name for t in store.service.list_tables()}


def test_from_settings_uses_the_endpoint_with_a_credential() -> None:
    credential = DefaultAzureCredential()
    store = TableFindingStore.from_settings(credential, {"FINDINGS_TABLE_ENDPOINT": "https://acct.table.core.windows.net"})
    assert store.service.url.startswith("https://acct.table.core.windows.net")
    with pytest.raises(SettingsError, match="FINDINGS_TABLE_ENDPOINT"):
        TableFindingStore.from_settings(credential, {})
    with pytest.raises(SettingsError, match="credential"):
        TableFindingStore.from_settings(None, {"FINDINGS_TABLE_ENDPOINT": "https://acct.table.core.windows.net"})


@pytest.mark.parametrize("prefix", ["", "1abc", "a-b", "a" * 60])
def test_bad_prefix(table_service, prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        TableFindingStore(table_service, prefix=prefix)
