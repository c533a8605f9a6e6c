"""The same rows in every file format the loader reads give the same query results; bad lines are reported by
file and line while the good lines around them still load."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 11, tzinfo=UTC)
DASH_OP = "Update application \u2013 Certificates and secrets management "

# Three AuditLogs rows as a Log Analytics export has them. Times are whole milliseconds: the portal CSV has no more.
INITIATED_1 = {"user": {"id": "99999999-0000-4000-8000-000000000001", "userPrincipalName": "mallory@contoso.example",
                        "ipAddress": "198.51.100.7"}}
TARGETS_1 = [{"id": "bbbbbbbb-1111-4222-8333-444444444444", "displayName": "payroll-sync", "type": "Application",
              "modifiedProperties": [{"displayName": "KeyDescription", "oldValue": "[]",
                                      "newValue": '["[KeyIdentifier=0e1d2c3b-4a59-4687-9a5b-6c7d8e9f0a1b,'
                                                  'KeyType=Password,KeyUsage=Verify,DisplayName=backup]"]'}]}]
INITIATED_2 = {"app": {"displayName": "automation-admin", "servicePrincipalId": "44444444-4444-4444-4444-444444444444"}}
TARGETS_2 = [{"id": "33333333-3333-3333-3333-333333333333", "displayName": "build-agent", "type": "ServicePrincipal"}]

EXPECTED = [
    {"Id": "Directory_1", "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 123000, tzinfo=UTC),
     "OperationName": DASH_OP, "Category": "ApplicationManagement", "Result": "success", "ResultReason": "",
     "DurationMs": 15, "ActivityDateTime": datetime(2026, 3, 10, 5, 0, 0, 123000, tzinfo=UTC),
     "Upn": "mallory@contoso.example", "KeyValue": TARGETS_1[0]["modifiedProperties"][0]["newValue"],
     "InitiatedBy": INITIATED_1, "TargetResources": TARGETS_1, "Type": "AuditLogs"},
    {"Id": "Directory_2", "TimeGenerated": datetime(2026, 3, 10, 17, 45, 9, 0, tzinfo=UTC),
     "OperationName": "Add service principal credentials", "Category": "ApplicationManagement",
     "Result": "success", "ResultReason": "", "DurationMs": None, "ActivityDateTime": None,
     "Upn": "", "KeyValue": "", "InitiatedBy": INITIATED_2, "TargetResources": TARGETS_2, "Type": "AuditLogs"},
    {"Id": "Directory_3", "TimeGenerated": datetime(2026, 3, 11, 0, 0, 0, 5000, tzinfo=UTC),
     "OperationName": "Add owner to application", "Category": "ApplicationManagement", "Result": "failure",
     "ResultReason": "Insufficient privileges", "DurationMs": 0, "ActivityDateTime": None,
     "Upn": "", "KeyValue": "", "InitiatedBy": None, "TargetResources": [], "Type": "AuditLogs"},
]

QUERY = """
AuditLogs
| project Id, TimeGenerated, OperationName, Category, Result, ResultReason, DurationMs, ActivityDateTime,
          Upn = tostring(InitiatedBy.user.userPrincipalName),
          KeyValue = tostring(TargetResources[0].modifiedProperties[0].newValue),
          InitiatedBy, TargetResources, Type
| order by Id asc
"""

# JSON rows: seven fractional digits as Log Analytics writes them; dynamic columns as objects or as JSON text
JSON_ROWS = [
    {"TimeGenerated": "2026-03-10T05:00:00.1230000Z", "Id": "Directory_1", "OperationName": DASH_OP,
     "Category": "ApplicationManagement", "Result": "success", "ResultReason": "", "DurationMs": 15,
     "ActivityDateTime": "2026-03-10T05:00:00.123Z", "InitiatedBy": INITIATED_1, "TargetResources": TARGETS_1},
    {"TimeGenerated": "2026-03-10T17:45:09.0000000Z", "Id": "Directory_2",
     "OperationName": "Add service principal credentials", "Category": "ApplicationManagement", "Result": "success",
     "ResultReason": "", "InitiatedBy": json.dumps(INITIATED_2), "TargetResources": json.dumps(TARGETS_2)},
    {"TimeGenerated": "2026-03-11T00:00:00.0050000Z", "Id": "Directory_3", "OperationName": "Add owner to application",
     "Category": "ApplicationManagement", "Result": "failure", "ResultReason": "Insufficient privileges",
     "DurationMs": "0", "ActivityDateTime": "", "InitiatedBy": None, "TargetResources": "[]"},
]


def _csv_json(value) -> str:
    return '"' + json.dumps(value, separators=(",", ":")).replace('"', '""') + '"'


# The portal's "Export to CSV": `Column [UTC]` headers, US dates with milliseconds, dynamic values as JSON text
PORTAL_CSV = "\r\n".join([
    "TimeGenerated [UTC],Id,OperationName,Category,Result,ResultReason,DurationMs,ActivityDateTime [UTC],"
    "InitiatedBy,TargetResources",
    f'"3/10/2026, 5:00:00.123 AM",Directory_1,{DASH_OP},ApplicationManagement,success,,15,'
    f'"3/10/2026, 5:00:00.123 AM",{_csv_json(INITIATED_1)},{_csv_json(TARGETS_1)}',
    f'"3/10/2026, 5:45:09.000 PM",Directory_2,Add service principal credentials,ApplicationManagement,success,,,,'
    f"{_csv_json(INITIATED_2)},{_csv_json(TARGETS_2)}",
    '"3/11/2026, 12:00:00.005 AM",Directory_3,Add owner to application,ApplicationManagement,failure,'
    "Insufficient privileges,0,,,[]",
    "",
])


def _write_parquet(path: Path) -> None:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.execute("""
        CREATE TABLE t (TimeGenerated TIMESTAMP, Id VARCHAR, OperationName VARCHAR, Category VARCHAR,
                        Result VARCHAR, ResultReason VARCHAR, DurationMs BIGINT, ActivityDateTime TIMESTAMP,
                        InitiatedBy JSON, TargetResources JSON)""")
    connection.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        (datetime(2026, 3, 10, 5, 0, 0, 123000), "Directory_1", DASH_OP, "ApplicationManagement", "success", "",
         15, datetime(2026, 3, 10, 5, 0, 0, 123000), json.dumps(INITIATED_1), json.dumps(TARGETS_1)),
        (datetime(2026, 3, 10, 17, 45, 9), "Directory_2", "Add service principal credentials",
         "ApplicationManagement", "success", "", None, None, json.dumps(INITIATED_2), json.dumps(TARGETS_2)),
        (datetime(2026, 3, 11, 0, 0, 0, 5000), "Directory_3", "Add owner to application", "ApplicationManagement",
         "failure", "Insufficient privileges", 0, None, None, "[]"),
    ])
    connection.execute(f"COPY t TO '{path}' (FORMAT parquet)")
    connection.close()


def _write(folder: Path, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path = folder / "AuditLogs.jsonl"
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in JSON_ROWS), encoding="utf-8")
    elif fmt == "json-array":
        path = folder / "AuditLogs.json"
        path.write_text(json.dumps(JSON_ROWS, indent=2), encoding="utf-8")
    elif fmt == "records-batch":
        path = folder / "AuditLogs.json"
        path.write_text(json.dumps({"records": JSON_ROWS}), encoding="utf-8")
    elif fmt == "csv":
        path = folder / "AuditLogs.csv"
        path.write_bytes(b"\xef\xbb\xbf" + PORTAL_CSV.encode("utf-8"))  # the portal writes a BOM
    else:
        path = folder / "AuditLogs.parquet"
        _write_parquet(path)
    return path


def _load(folder: Path):
    database = LogDatabase()
    report = database.load_folder(folder)
    return EmbeddedLogSource(database, NOW), report


FORMATS = ["jsonl", "json-array", "records-batch", "csv", "parquet"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_gives_the_exact_rows(tmp_path, fmt):
    _write(tmp_path, fmt)
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AuditLogs": 3})
    assert source.query(QUERY, NOW, NOW) == EXPECTED


def test_all_formats_agree_on_every_query(tmp_path):
    kql = """AuditLogs
        | where OperationName has "Certificates and secrets management" or Result == "failure"
        | extend Actor = iff(isnotempty(tostring(InitiatedBy.user.userPrincipalName)),
            tostring(InitiatedBy.user.userPrincipalName), tostring(InitiatedBy.app.displayName))
        | summarize n = count(), FirstSeen = min(TimeGenerated), ops = make_set(OperationName),
            actors = make_set(Actor) by Result
        | order by Result asc"""
    results = {}
    for fmt in FORMATS:
        _write(tmp_path / fmt, fmt)
        results[fmt] = _load(tmp_path / fmt)[0].query(kql, NOW, NOW)
    assert results["jsonl"] == [
        {"Result": "failure", "n": 1, "FirstSeen": datetime(2026, 3, 11, 0, 0, 0, 5000, tzinfo=UTC),
         "ops": ["Add owner to application"], "actors": [""]},
        {"Result": "success", "n": 1, "FirstSeen": datetime(2026, 3, 10, 5, 0, 0, 123000, tzinfo=UTC),
         "ops": [DASH_OP], "actors": ["mallory@contoso.example"]},
    ]
    assert all(result == results["jsonl"] for result in results.values()), results


def test_log_analytics_seven_digit_fractions_parse(tmp_path):
    (tmp_path / "SigninLogs.jsonl").write_text(
        '{"TimeGenerated": "2026-03-10T05:00:00.9999999Z", "Id": "a"}\n'
        '{"TimeGenerated": "2026-03-10T05:00:00.1234567+00:00", "Id": "b"}\n'
        '{"TimeGenerated": "2026-03-10T07:00:00.1234567+02:00", "Id": "c"}\n'
        '{"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "d"}\n')
    source, report = _load(tmp_path)
    assert report.problems == []
    rows = source.query("SigninLogs | project Id, TimeGenerated | order by Id asc", NOW, NOW)
    assert rows == [
        {"Id": "a", "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 999999, tzinfo=UTC)},
        {"Id": "b", "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 123456, tzinfo=UTC)},
        {"Id": "c", "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 123456, tzinfo=UTC)},
        {"Id": "d", "TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, tzinfo=UTC)},
    ]


def test_a_sub_folder_is_one_table_with_all_its_files(tmp_path):
    folder = tmp_path / "AuditLogs"
    _write(folder / "2026" / "03", "jsonl")
    (folder / "extra.csv").write_text(
        "TimeGenerated [UTC],Id,OperationName\r\n\"3/12/2026, 1:02:03.000 PM\",Directory_9,Update application\r\n")
    (folder / "notes.txt").write_text("not a log file")
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.files == 2
    assert report.rows == Counter({"AuditLogs": 4})
    rows = source.query("AuditLogs | where Id == 'Directory_9' | project TimeGenerated, OperationName", NOW, NOW)
    assert rows == [{"TimeGenerated": datetime(2026, 3, 12, 13, 2, 3, tzinfo=UTC),
                     "OperationName": "Update application"}]


def test_table_names_match_case_insensitively(tmp_path):
    (tmp_path / "aadserviceprincipalsigninlogs.jsonl").write_text(
        '{"TimeGenerated": "2026-03-10T05:00:00Z", "ResultType": "0", "ServicePrincipalName": "payroll-sync", '
        '"DurationMs": "42"}\n')
    (tmp_path / "AUDITLOGS").mkdir()
    (tmp_path / "AUDITLOGS" / "a.jsonl").write_text(
        '{"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "x", "InitiatedBy": {"app": {"displayName": "y"}}}\n')
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"AADServicePrincipalSignInLogs": 1, "AuditLogs": 1})
    assert source.query("AADServicePrincipalSignInLogs | project ServicePrincipalName, DurationMs, Type", NOW, NOW) \
        == [{"ServicePrincipalName": "payroll-sync", "DurationMs": 42, "Type": "AADServicePrincipalSignInLogs"}]
    assert source.query("AuditLogs | project Actor = tostring(InitiatedBy.app.displayName), Type", NOW, NOW) \
        == [{"Actor": "y", "Type": "AuditLogs"}]


def test_an_unknown_table_loads_with_its_columns_as_strings(tmp_path):
    (tmp_path / "Custom_CL.jsonl").write_text(
        '{"TimeGenerated": "2026-03-10T05:00:00.5Z", "Count": 5, "Ratio": 0.25, "Flag": true, '
        '"Nested": {"a": [1, 2]}, "Name": "x"}\n'
        '{"TimeGenerated": "2026-03-10T06:00:00Z", "Count": "7", "Name": ""}\n')
    source, report = _load(tmp_path)
    assert report.problems == []
    assert report.rows == Counter({"Custom_CL": 2})
    assert source.database.columns("Custom_CL") == {
        "TimeGenerated": "DateTime", "Type": "String", "Count": "String", "Ratio": "String", "Flag": "String",
        "Nested": "String", "Name": "String"}
    rows = source.query("Custom_CL | order by TimeGenerated asc", NOW, NOW)
    assert rows == [
        {"TimeGenerated": datetime(2026, 3, 10, 5, 0, 0, 500000, tzinfo=UTC), "Type": "Custom_CL", "Count": "5",
         "Ratio": "0.25", "Flag": "true", "Nested": '{"a":[1,2]}', "Name": "x"},
        {"TimeGenerated": datetime(2026, 3, 10, 6, 0, tzinfo=UTC), "Type": "Custom_CL", "Count": "7",
         "Ratio": None, "Flag": None, "Nested": None, "Name": ""},
    ]
    assert source.query('Custom_CL | where Count == "7" | project Name', NOW, NOW) == [{"Name": ""}]


def test_a_table_the_folder_lacks_is_empty_not_missing(tmp_path):
    _write(tmp_path, "jsonl")
    source, _ = _load(tmp_path)
    assert source.query("AADManagedIdentitySignInLogs | summarize n = count()", NOW, NOW) == [{"n": 0}]


# --- malformed input ---------------------------------------------------------------------------------------------

def test_bad_json_lines_are_reported_by_line_and_the_good_lines_load(tmp_path):
    path = tmp_path / "AuditLogs.jsonl"
    path.write_text("\n".join([
        '{"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "good-1"}',
        '{"TimeGenerated": "2026-03-10T05:01:00Z", "Id": "truncated"',
        '["an", "array", "not", "an", "object"]',
        "",
        '{"TimeGenerated": "yesterday at noon", "Id": "bad-time"}',
        '"just a string"',
        '{"TimeGenerated": "2026-03-10T05:02:00Z", "Id": "bad-duration", "DurationMs": "fast"}',
        '{"TimeGenerated": "2026-03-10T05:03:00.1234567Z", "Id": "good-2", "DurationMs": "3"}',
    ]) + "\n")
    source, report = _load(tmp_path)
    problems = [str(problem) for problem in report.problems]
    assert [problem.split(": ", 1)[0] for problem in problems] == [f"{path}:2", f"{path}:3", f"{path}:5",
                                                                    f"{path}:6", f"{path}:7"]
    assert problems[0].startswith(f"{path}:2: not valid JSON: ")
    assert problems[1] == f"{path}:3: expected a JSON object, found an array"
    assert problems[2] == f"{path}:5: column TimeGenerated: 'yesterday at noon' is not a date and time"
    assert problems[3] == f"{path}:6: expected a JSON object, found a string"
    assert problems[4].startswith(f"{path}:7: column DurationMs: ")
    assert report.rows == Counter({"AuditLogs": 2})
    assert source.query("AuditLogs | project Id, TimeGenerated, DurationMs | order by Id asc", NOW, NOW) == [
        {"Id": "good-1", "TimeGenerated": datetime(2026, 3, 10, 5, 0, tzinfo=UTC), "DurationMs": None},
        {"Id": "good-2", "TimeGenerated": datetime(2026, 3, 10, 5, 3, 0, 123456, tzinfo=UTC), "DurationMs": 3},
    ]


def test_windows_and_mixed_line_ends_keep_line_numbers_and_values(tmp_path):
    """A file saved on Windows ends its lines with CR LF, one edited by hand may mix both: the values carry no CR
    and a bad line is reported at its own line."""
    path = tmp_path / "AuditLogs.json"
    path.write_bytes(b'{"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "crlf", "OperationName": "a"}\r\n'
                     b"\r\n"
                     b'{"TimeGenerated": "2026-03-10T05:01:00Z", "Id": "truncated"\r\n'
                     b'{"TimeGenerated": "2026-03-10T05:02:00Z", "Id": "lf", "OperationName": "b"}\n'
                     b'{"TimeGenerated": "2026-03-10T05:03:00Z", "Id": "last", "OperationName": "c"}')
    source, report = _load(tmp_path)
    assert [str(problem).split(": ", 1)[0] for problem in report.problems] == [f"{path}:3"]
    assert source.query("AuditLogs | project Id, OperationName | order by Id asc", NOW, NOW) == [
        {"Id": "crlf", "OperationName": "a"}, {"Id": "last", "OperationName": "c"}, {"Id": "lf", "OperationName": "b"},
    ]


def test_bad_csv_rows_are_reported_by_line_and_the_good_rows_load(tmp_path):
    path = tmp_path / "AuditLogs.csv"
    path.write_text("\r\n".join([
        "TimeGenerated [UTC],Id,OperationName",
        '"3/10/2026, 5:00:00.000 AM",good-1,Update application',
        '"3/10/2026, 5:01:00.000 AM",too-many,Update application,surplus',
        '"3/10/2026, 5:02:00.000 AM",too-few',
        '"13/45/2026, 5:03:00.000 AM",bad-time,Update application',
        "",
        '"3/10/2026, 5:04:00.000 PM",good-2,"Update application \u2013 Certificates and secrets management "',
        "",
    ]), encoding="utf-8")
    source, report = _load(tmp_path)
    assert [str(problem) for problem in report.problems] == [
        f"{path}:3: expected 3 fields, found 4",
        f"{path}:4: expected 3 fields, found 2",
        f"{path}:5: column TimeGenerated: '13/45/2026, 5:03:00.000 AM' is not a date and time",
    ]
    assert report.rows == Counter({"AuditLogs": 2})
    assert source.query("AuditLogs | project Id, TimeGenerated, OperationName | order by Id asc", NOW, NOW) == [
        {"Id": "good-1", "TimeGenerated": datetime(2026, 3, 10, 5, 0, tzinfo=UTC),
         "OperationName": "Update application"},
        {"Id": "good-2", "TimeGenerated": datetime(2026, 3, 10, 17, 4, tzinfo=UTC), "OperationName": DASH_OP},
    ]


def test_a_non_object_in_a_json_array_is_reported_by_its_position(tmp_path):
    path = tmp_path / "AuditLogs.json"
    path.write_text(json.dumps([{"TimeGenerated": "2026-03-10T05:00:00Z", "Id": "a"}, 42,
                                {"TimeGenerated": "2026-03-10T05:00:01Z", "Id": "b"}]))
    _, report = _load(tmp_path)
    assert [str(problem) for problem in report.problems] == [f"{path}:2: expected a JSON object, found a number"]
    assert report.rows == Counter({"AuditLogs": 2})


def test_a_missing_folder_raises_with_its_path(tmp_path):
    missing = tmp_path / "no-such-logs"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        LogDatabase().load_folder(missing)
