"""AzuriteTable: starts the real emulator, answers, stops; a missing install names `make setup`."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from shared.local.azurite import AzuriteError, AzuriteTable


def test_session_azurite_answers(azurite: AzuriteTable) -> None:
    assert f"TableEndpoint=http://127.0.0.1:{azurite.port}/devstoreaccount1" in azurite.connection_string
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    service.create_table_if_not_exists("tlocalcheck")
    assert "tlocalcheck" in {table.name for table in service.list_tables()}


def test_persistent_location_survives_restart_and_stop_frees_port(tmp_path: Path) -> None:
    with AzuriteTable(location=tmp_path / "azurite") as first:
        service = TableServiceClient.from_connection_string(first.connection_string)
        service.create_table("tkeep").create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
        port = first.port
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0  # the process is gone
    with AzuriteTable(location=tmp_path / "azurite", port=port) as second:
        service = TableServiceClient.from_connection_string(second.connection_string)
        assert service.get_table_client("tkeep").get_entity("p", "r")["v"] == 1


def test_missing_azurite_names_make_setup(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="make setup"), AzuriteTable(executable=tmp_path / "azurite-table"):
        pass
