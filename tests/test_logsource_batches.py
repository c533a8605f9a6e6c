"""Loading a folder in batches of files (so memory follows a batch, not the folder) gives exactly what loading it at
once gives: every table's rows, every problem with its file and line, the unreadable and unmatched files."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from shared.logsource import database as database_module
from shared.logsource.database import LogDatabase
from shared.tables import table_schemas

FIXTURES = Path(__file__).parent / "fixtures" / "raw"
SP = "AADServicePrincipalSignInLogs"


def _mixed_folder(tmp_path: Path) -> Path:
    """The raw fixtures with bad files and bad records beside them, in several files of each kind."""
    folder = tmp_path / "logs"
    shutil.copytree(FIXTURES / "tenant", folder / "raw")
    shutil.copytree(FIXTURES / "unknown-category", folder / "unknown")
    shutil.copytree(FIXTURES / "logicapp", folder / "logicapp")
    signins = folder / SP
    signins.mkdir()
    good = {"TimeGenerated": "2026-03-10T05:00:00Z", "ServicePrincipalName": "payroll-sync", "ResultType": "0"}
    for number in range(3):
        lines = [json.dumps(good | {"DurationMs": number * 10 + line}) for line in range(3)]
        lines.insert(number, '{"TimeGenerated": "9999-12-31T23:00:00-05:00", "ResultType": "1"}')
        (signins / f"part-{number}.jsonl").write_text("\n".join(lines) + "\n")
    (signins / "part-3.json.gz").write_bytes(gzip.compress((json.dumps(good) + "\n").encode()))
    (signins / "utf16.json").write_bytes(json.dumps(good).encode("utf-16"))
    (signins / "broken.json.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (folder / "notes.txt").write_text("not a log")
    return folder


def _everything(folder: Path) -> tuple[dict[str, list[tuple]], dict]:
    database = LogDatabase()
    report = database.load_folder(folder)
    tables = {}
    for table in table_schemas():
        cursor = database.connection.execute(f'SELECT * FROM "{table}"')
        tables[table] = sorted((_values(cursor, row) for row in cursor.fetchall()), key=repr)
    return tables, {"rows": dict(report.rows), "files": report.files, "unmatched": report.unmatched,
                    "unreadable": report.unreadable, "problems": [str(problem) for problem in report.problems]}


def _values(cursor, row: tuple) -> dict:
    """A row's values by column, nulls left out: a batch may add an open table's columns in another order."""
    return {column[0]: value for column, value in zip(cursor.description, row, strict=True) if value is not None}


@pytest.mark.parametrize("limit", [1, 4096])
def test_a_folder_loaded_in_batches_is_the_folder_loaded_at_once(tmp_path, monkeypatch, limit):
    folder = _mixed_folder(tmp_path)
    whole_tables, whole_report = _everything(folder)
    monkeypatch.setattr(database_module, "BATCH_BYTES", limit)
    tables, report = _everything(folder)
    assert whole_report["rows"][SP] == 5 + 3 * 3 + 1 and len(whole_report["problems"]) == 6
    assert len(whole_report["unreadable"]) == 2 and whole_report["unmatched"] == [folder / "notes.txt"]
    assert tables == whole_tables
    assert {key: value for key, value in report.items() if key != "problems"} == \
        {key: value for key, value in whole_report.items() if key != "problems"}
    assert sorted(report["problems"]) == sorted(whole_report["problems"])


def test_batches_keep_the_files_in_order_and_a_big_file_alone(tmp_path):
    sizes = {"a": 3, "b": 3, "c": 10, "d": 1, "e": 1}
    files = []
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(b"x" * size)
        files.append((tmp_path / name, name))
    batches = [[hint for _, hint in batch] for batch in database_module._batches(files, 6)]
    assert batches == [["a", "b"], ["c"], ["d", "e"]]
