"""Credential usage from the sign-in logs: one query, valid for Microsoft's Kusto parser, answered by
the embedded engine with the values the checks rely on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.kql.validator import validate_queries
from shared.logsource.base import LogQueryError
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.posture.usage import USAGE_QUERY, read_usage, usage_header, usage_query

NOW = datetime(2026, 3, 15, tzinfo=UTC)
SP, MI = "AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"


def _sign_in(hours_ago: float, sp: str, result: str = "0", key: str = "", thumbprint: str = "",
             federated: str = "") -> dict:
    return {"TimeGenerated": (NOW - timedelta(hours=hours_ago)).isoformat(), "ServicePrincipalId": sp,
            "ResultType": result, "ServicePrincipalCredentialKeyId": key,
            "ServicePrincipalCredentialThumbprint": thumbprint, "FederatedCredentialId": federated}


@pytest.fixture
def source() -> EmbeddedLogSource:
    database = LogDatabase()
    assert database.insert(SP, [(None, row) for row in (
        _sign_in(2, "SP-1", key="6F1C-AAAA"),  # key id in upper case, principal id too
        _sign_in(1, "sp-1", result="7000222", key="6f1c-aaaa"),  # a later failure does not count as use
        _sign_in(30, "sp-1", key="6f1c-aaaa"),
        _sign_in(5, "sp-2", thumbprint="ab12cd"),  # a certificate seen by thumbprint only
        _sign_in(6, "sp-2"),  # a success that names no credential
        _sign_in(7, "sp-3", federated="F-1"),
        _sign_in(24 * 40, "sp-4", key="k-4"),  # the earliest record
        _sign_in(24 * 100, "sp-5", key="k-5"),  # before the window: not read
        _sign_in(-1, "sp-6", key="k-6"),  # at or after the window's end: not read
    )]) == []
    assert database.insert(MI, [(None, _sign_in(3, "mi-1")), (None, _sign_in(24 * 10, "mi-1"))]) == []
    return EmbeddedLogSource(database, NOW)


def test_last_use_per_principal_key_thumbprint_and_federated_credential(source):
    usage = read_usage(source, NOW, timedelta(days=91))
    assert usage.last_sign_in("SP-1") == NOW - timedelta(hours=2)
    assert usage.last_used("sp-1", key_id="6F1C-aaaa") == NOW - timedelta(hours=2)
    assert usage.last_used("sp-2", key_id="nope", thumbprint="AB12CD") == NOW - timedelta(hours=5)
    assert usage.last_used("sp-2", thumbprint="ab:12:cd") == NOW - timedelta(hours=5)
    assert usage.last_used("sp-3", federated_id="f-1") == NOW - timedelta(hours=7)
    assert usage.last_unattributed("sp-2") == NOW - timedelta(hours=6) and usage.last_unattributed("sp-1") is None
    assert usage.last_sign_in("mi-1") == NOW - timedelta(hours=3)
    assert usage.last_sign_in("sp-5") is None and usage.last_sign_in("sp-6") is None


def test_earliest_record_per_table_decides_whether_usage_is_known(source):
    usage = read_usage(source, NOW, timedelta(days=91))
    assert usage.start_for(managed_identity=False) == NOW - timedelta(days=40)
    assert usage.start_for(managed_identity=True) == NOW - timedelta(days=10)
    assert usage.covers(False, NOW - timedelta(days=30)) and not usage.covers(False, NOW - timedelta(days=90))
    assert usage.covers(False, NOW - timedelta(days=41))  # one day's grace for the oldest, partly aged-out day
    assert not usage.covers(True, NOW - timedelta(days=30))


def test_no_logs_means_nothing_is_known():
    usage = read_usage(EmbeddedLogSource(LogDatabase(), NOW), NOW, timedelta(days=31))
    assert usage.logs_start == {} and usage.principals == {}
    assert not usage.covers(False, NOW - timedelta(days=1))


def test_a_failing_source_raises_log_query_error():
    class Failing:
        def query(self, kql, start, end):
            raise LogQueryError("workspace answered 500")

    with pytest.raises(LogQueryError):
        read_usage(Failing(), NOW, timedelta(days=31))


def test_the_query_keeps_the_time_contract_and_passes_microsofts_kusto_parser():
    assert "now(" not in USAGE_QUERY and "ago(" not in USAGE_QUERY
    assert usage_query(NOW - timedelta(days=91), NOW).splitlines()[0] == usage_header(NOW - timedelta(days=91), NOW)
    (check,) = validate_queries([("usage", USAGE_QUERY)],
                                headers={"usage": usage_header(NOW - timedelta(days=91), NOW)}).values()
    assert check.errors == ()
    assert check.columns == ("Kind", "ServicePrincipalId", "Key", "LastUsed")
