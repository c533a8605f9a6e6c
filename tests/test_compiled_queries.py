"""Queries are compiled once and kept on disk; the catalog is loaded once per process while its files stay the
same. What a command reads back from the cache is what it runs, so these tests change a cached record and see the
change in the answer."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime

import pytest

from shared.catalog.loader import DETECTIONS_DIR, load_catalog
from shared.logsource import compiled
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 10, tzinfo=UTC)
WINDOW = ("let WindowStart = datetime(2026-03-09T00:00:00Z); let WindowEnd = datetime(2026-03-10T00:00:00Z);\n"
          "AuditLogs | where TimeGenerated between (WindowStart .. WindowEnd) | summarize Rows = count()")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("WIAUDIT_HOME", str(tmp_path))
    return tmp_path


def _audit_rows(count: int) -> LogDatabase:
    database = LogDatabase()
    rows = [(None, {"TimeGenerated": "2026-03-09T05:00:00Z", "OperationName": f"op {n}"}) for n in range(count)]
    assert database.insert("AuditLogs", rows) == []
    return database


def test_a_query_is_answered_from_its_cached_translation(home):
    assert EmbeddedLogSource(_audit_rows(3), NOW).query(WINDOW, NOW, NOW) == [{"Rows": 3}]
    [record_file] = (home / "cache" / "kql").glob("*.json")
    record = json.loads(record_file.read_text())
    record["sql"] = record["sql"].replace('AS "Rows"', '+ 40 AS "Rows"')
    record_file.write_text(json.dumps(record))

    assert EmbeddedLogSource(_audit_rows(3), NOW).query(WINDOW, NOW, NOW) == [{"Rows": 43}]


def test_another_schema_or_text_is_translated_anew(home):
    source = EmbeddedLogSource(_audit_rows(1), NOW)
    source.query(WINDOW, NOW, NOW)
    source.query(WINDOW.replace("Rows", "Count"), NOW, NOW)
    source.database.insert("CustomTable_CL", [(None, {"TimeGenerated": "2026-03-09T05:00:00Z"})])
    source.query(WINDOW, NOW, NOW)
    assert len(list((home / "cache" / "kql").glob("*.json"))) == 3


def test_a_query_calling_a_stored_function_is_translated_anew_when_the_function_changes(home):
    import duckdb_kql

    query = "Threshold() | project Rows = Value"
    saved = duckdb_kql.get_functions()
    try:
        duckdb_kql.set_functions(["function Threshold() { print Value = 1 }"])
        assert EmbeddedLogSource(LogDatabase(), NOW).query(query, NOW, NOW) == [{"Rows": 1}]
        duckdb_kql.set_functions(["function Threshold() { print Value = 2 }"])
        assert EmbeddedLogSource(LogDatabase(), NOW).query(query, NOW, NOW) == [{"Rows": 2}]
    finally:
        duckdb_kql.set_functions(saved)


def test_an_unreadable_cache_entry_is_translated_again(home):
    EmbeddedLogSource(_audit_rows(2), NOW).query(WINDOW, NOW, NOW)
    [record_file] = (home / "cache" / "kql").glob("*.json")
    record_file.write_text('{"sql": "SELE')
    assert EmbeddedLogSource(_audit_rows(2), NOW).query(WINDOW, NOW, NOW) == [{"Rows": 2}]


def test_an_unwritable_cache_does_not_stop_a_query(tmp_path, monkeypatch):
    blocked = tmp_path / "home"
    blocked.write_text("a file where the home folder should be")
    monkeypatch.setenv("WIAUDIT_HOME", str(blocked))
    assert EmbeddedLogSource(_audit_rows(1), NOW).query(WINDOW, NOW, NOW) == [{"Rows": 1}]


def test_the_fixed_clock_is_bound_from_a_cached_translation(home):
    text = "print Now = now()"
    assert EmbeddedLogSource(LogDatabase(), NOW).query(text, NOW, NOW) == [{"Now": NOW}]
    later = datetime(2027, 1, 1, tzinfo=UTC)
    assert EmbeddedLogSource(LogDatabase(), later).query(text, later, later) == [{"Now": later}]


def test_the_catalog_is_loaded_once_while_its_files_stay_the_same(tmp_path, home):
    shutil.copy(DETECTIONS_DIR / "sp_signin_failures.yaml", tmp_path)
    first = load_catalog(tmp_path)
    assert load_catalog(tmp_path) is first
    path = tmp_path / "sp_signin_failures.yaml"
    path.write_text(path.read_text().replace("name: Service principal sign-in failures",
                                             "name: Sign-in failures of service principals"))
    assert [d.name for d in load_catalog(tmp_path)] == ["Sign-in failures of service principals"]


def test_the_catalog_check_reads_output_columns_from_the_cache(tmp_path, home):
    """A warm start runs no query at all: the output columns the entity mappings are checked against are cached."""
    shutil.copy(DETECTIONS_DIR / "sp_signin_failures.yaml", tmp_path)
    load_catalog(tmp_path)
    columns = [path for path in (home / "cache" / "kql").glob("*.json") if "value" in json.loads(path.read_text())]
    assert len(columns) == 1
    columns[0].write_text(json.dumps({"value": ["SomethingElse"]}))
    (tmp_path / "sp_signin_failures.yaml").write_text((tmp_path / "sp_signin_failures.yaml").read_text() + "\n")
    with pytest.raises(ValueError, match=r"is not an output column of the query \(it outputs SomethingElse\)"):
        load_catalog(tmp_path)


def test_the_cache_key_names_the_engine_version(monkeypatch):
    before = compiled.cache_key("sql", WINDOW, {"AuditLogs": ["TimeGenerated"]})
    monkeypatch.setattr(compiled, "_engine_version", lambda: "0.0.1")
    assert compiled.cache_key("sql", WINDOW, {"AuditLogs": ["TimeGenerated"]}) != before
