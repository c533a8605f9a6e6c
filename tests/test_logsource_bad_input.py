"""Bad input never stops a load: an unreadable file is named and skipped, a bad record is listed with its file and
line, and the good records beside them load with their exact values."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.readers import Location

NOW = datetime(2026, 3, 11, tzinfo=UTC)
GOOD = {"TimeGenerated": "2026-03-10T05:00:00Z", "ServicePrincipalName": "payroll-sync", "ResultType": "0",
        "DurationMs": 42}
SP = "AADServicePrincipalSignInLogs"


def _load(folder: Path):
    database = LogDatabase()
    report = database.load_folder(folder)
    return EmbeddedLogSource(database, NOW), report


def _good_file(folder: Path, name: str = f"{SP}.jsonl") -> Path:
    path = folder / name
    path.write_text(json.dumps(GOOD) + "\n")
    return path


def _names(source: EmbeddedLogSource) -> list[dict]:
    return source.query(f"{SP} | project ServicePrincipalName, ResultType, DurationMs, TimeGenerated "
                        "| order by ServicePrincipalName asc", NOW, NOW)


GOOD_ROW = {"ServicePrincipalName": "payroll-sync", "ResultType": "0", "DurationMs": 42,
            "TimeGenerated": datetime(2026, 3, 10, 5, tzinfo=UTC)}


def _problems(report) -> list[str]:
    return [str(problem) for problem in report.problems]


# --- whole files that cannot be read: named, skipped, the rest loads ----------------------------------------------

def _beside_a_good_file(tmp_path: Path, name: str, content: bytes):
    """Load `content` as file `name` beside a good file: the good row must load; the report is returned."""
    _good_file(tmp_path)
    (tmp_path / name).write_bytes(content)
    source, report = _load(tmp_path)
    assert _names(source) == [GOOD_ROW]
    assert report.rows == Counter({SP: 1})
    return tmp_path / name, report


def test_a_utf16_file_is_named_and_skipped(tmp_path):
    record = json.dumps({"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "x"})
    bad, report = _beside_a_good_file(tmp_path, "AuditLogs.json", record.encode("utf-16"))
    assert _problems(report) == [f"{bad}: is not UTF-8 text (UTF-16 or binary): save it as UTF-8"]
    assert report.unreadable == [bad]
    assert bad not in report.unmatched


def test_a_corrupt_parquet_file_is_named_and_skipped(tmp_path):
    bad, report = _beside_a_good_file(tmp_path, "AuditLogs.parquet", b"PAR1" + b"\x00garbage" * 20 + b"PAR1")
    [problem] = _problems(report)
    assert problem.startswith(f"{bad}: could not be read: ")
    assert "/tmp/" not in problem.replace(str(tmp_path), "")
    assert report.unreadable == [bad]


def test_a_file_that_is_not_parquet_at_all_is_named(tmp_path):
    bad, report = _beside_a_good_file(tmp_path, "AuditLogs.parquet", b"TimeGenerated,Id\n")
    assert _problems(report) == [f"{bad}: is not a Parquet file"]


def test_a_broken_gzip_file_is_named_and_skipped(tmp_path):
    truncated = gzip.compress(b'{"TimeGenerated": "2026-03-10T05:00:00Z"}\n' * 100)[:40]
    bad, report = _beside_a_good_file(tmp_path, "AuditLogs.json.gz", truncated)
    [problem] = _problems(report)
    assert problem.startswith(f"{bad}: ")
    assert report.unreadable == [bad]


def test_a_broken_json_document_is_named_and_skipped(tmp_path):
    bad, report = _beside_a_good_file(tmp_path, "AuditLogs.json",
                                      b'[\n  {"TimeGenerated": "2026-03-10T05:00:00Z",\n  "Id": \n')
    [problem] = _problems(report)
    assert problem.startswith(f"{bad}: is not valid JSON: ")
    assert report.unreadable == [bad]


# --- compressed files and other names: read, never skipped silently ------------------------------------------------

def test_gzip_files_are_read_whatever_their_name(tmp_path):
    record = json.dumps({**GOOD, "ServicePrincipalName": "zipped"}) + "\n"
    (tmp_path / f"{SP}.json.gz").write_bytes(gzip.compress(record.encode()))
    (tmp_path / SP).mkdir()
    (tmp_path / SP / "PT1H.json").write_bytes(gzip.compress(record.replace("zipped", "zipped-no-suffix").encode()))
    (tmp_path / f"{SP}-export.csv.gz").write_bytes(gzip.compress(
        b"TimeGenerated [UTC],ServicePrincipalName,ResultType,DurationMs\r\n"
        b'"3/10/2026, 5:00:00.000 AM",zipped-csv,0,42\r\n'))
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows[SP] == 2  # the CSV's name is not a table: it is listed, not loaded
    assert report.unmatched == [tmp_path / f"{SP}-export.csv.gz"]
    assert [row["ServicePrincipalName"] for row in _names(source)] == ["zipped", "zipped-no-suffix"]


def test_a_gzip_parquet_file_is_read(tmp_path):
    plain = tmp_path / "plain.parquet"
    connection = duckdb.connect()
    connection.execute("CREATE TABLE t AS SELECT TIMESTAMP '2026-03-10 05:00:00' AS TimeGenerated, "
                       "'parquet-zipped' AS ServicePrincipalName, '0' AS ResultType, 42 AS DurationMs")
    connection.execute(f"COPY t TO '{plain}' (FORMAT parquet)")
    connection.close()
    (tmp_path / f"{SP}.parquet.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    source, report = _load(tmp_path)
    assert report.problems == []
    assert _names(source) == [{**GOOD_ROW, "ServicePrincipalName": "parquet-zipped"}]


def test_log_files_are_read_and_unknown_files_listed(tmp_path):
    (tmp_path / f"{SP}.log").write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "archive.zip").write_bytes(b"PK\x03\x04")
    source, report = _load(tmp_path)
    assert report.problems == []
    assert _names(source) == [GOOD_ROW]
    assert report.unmatched == [tmp_path / "archive.zip", tmp_path / "notes.txt"]


# --- bad records: listed by file and line, the good ones load ------------------------------------------------------

def _lines(tmp_path: Path, *records: str) -> Path:
    path = tmp_path / f"{SP}.jsonl"
    path.write_bytes(b"\n".join([json.dumps(GOOD).encode(), *(r.encode() for r in records)]) + b"\n")
    return path


def test_a_non_utf8_byte_is_reported_at_its_line(tmp_path):
    path = tmp_path / f"{SP}.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"TimeGenerated": "2026-03-10T06:00:00Z", '
                     b'"ServicePrincipalName": "caf\xe9"}\n' + json.dumps({**GOOD, "ServicePrincipalName": "z"})
                     .encode() + b"\n")
    source, report = _load(tmp_path)
    assert _problems(report) == [f"{path}:2: is not UTF-8 text"]
    assert [row["ServicePrincipalName"] for row in _names(source)] == ["payroll-sync", "z"]


def test_deeply_nested_json_is_reported_at_its_line(tmp_path):
    deep = "[" * 5000 + "]" * 5000
    deep_record = json.dumps({**GOOD, "ServicePrincipalName": "deep"})[:-1] + f', "LocationDetails": {deep}}}'
    path = _lines(tmp_path, deep_record,
                  json.dumps({**GOOD, "ServicePrincipalName": "shallow", "LocationDetails": [[[1]]]}))
    source, report = _load(tmp_path)
    assert _problems(report) == [f"{path}:2: nested deeper than 500 levels"]
    assert [row["ServicePrincipalName"] for row in _names(source)] == ["payroll-sync", "shallow"]


def test_a_date_past_year_9999_is_out_of_range(tmp_path):
    path = _lines(tmp_path, json.dumps({**GOOD, "TimeGenerated": "9999-12-31T23:00:00-05:00"}))
    source, report = _load(tmp_path)
    assert _problems(report) == [
        f"{path}:2: column TimeGenerated: '9999-12-31T23:00:00-05:00' is out of range (years 1 to 9999)"]
    assert _names(source) == [GOOD_ROW]


def test_inf_and_huge_integers_in_a_long_column_are_reported(tmp_path):
    path = _lines(tmp_path, json.dumps({**GOOD, "DurationMs": "inf"}),
                  '{"TimeGenerated": "2026-03-10T05:00:00Z", "DurationMs": 123456789012345678901234567890}',
                  json.dumps({**GOOD, "DurationMs": "-9223372036854775809"}),
                  json.dumps({**GOOD, "ServicePrincipalName": "max", "DurationMs": "9223372036854775807"}))
    source, report = _load(tmp_path)
    assert _problems(report) == [
        f"{path}:2: column DurationMs: 'inf' is not a finite number",
        f"{path}:3: column DurationMs: '123456789012345678901234567890' is out of range (a 64-bit integer)",
        f"{path}:4: column DurationMs: '-9223372036854775809' is out of range (a 64-bit integer)",
    ]
    assert [row["DurationMs"] for row in _names(source)] == [9223372036854775807, 42]


def test_a_record_without_a_time_is_reported_not_loaded_invisible(tmp_path):
    path = _lines(tmp_path, json.dumps({"ServicePrincipalName": "timeless", "ResultType": "0"}),
                  json.dumps({**GOOD, "TimeGenerated": ""}))
    source, report = _load(tmp_path)
    message = "no TimeGenerated (nor a time it could be taken from): no detection could see it"
    assert _problems(report) == [f"{path}:2: {message}", f"{path}:3: {message}"]
    assert _names(source) == [GOOD_ROW]


def test_a_float_result_type_matches_the_integer_code(tmp_path):
    _lines(tmp_path, json.dumps({**GOOD, "ServicePrincipalName": "float", "ResultType": 7000215.0}),
           json.dumps({**GOOD, "ServicePrincipalName": "float-text", "ResultType": "7000215.0"}),
           json.dumps({**GOOD, "ServicePrincipalName": "number", "ResultType": 50126}))
    source, report = _load(tmp_path)
    assert report.problems == []
    rows = source.query(f'{SP} | where ResultType in ("7000215", "50126") | project ServicePrincipalName, ResultType '
                        "| order by ServicePrincipalName asc", NOW, NOW)
    assert rows == [{"ServicePrincipalName": "float", "ResultType": "7000215"},
                    {"ServicePrincipalName": "float-text", "ResultType": "7000215"},
                    {"ServicePrincipalName": "number", "ResultType": "50126"}]


def test_problems_name_the_source_file_never_a_scratch_file(tmp_path):
    path = _lines(tmp_path, '{"TimeGenerated": "2026-03-10T05:00:00Z", "DurationMs": "fast"}', "{not json")
    _, report = _load(tmp_path)
    assert [problem.location for problem in report.problems] == [Location(path, 2), Location(path, 3)]
    assert all(str(problem).startswith(f"{path}:") for problem in report.problems)
