"""Load once, audit many times: a folder's loaded copy is reused while every file is as it was, and loaded again
when a file changes, is added or is removed. `detect` says which it did and exits 5 when records could not be
read."""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shared.cli import app, exit_codes
from shared.logsource.embedded import EmbeddedLogSource
from shared.logsource.loaded_copy import load_once

NOW = datetime(2026, 3, 11, tzinfo=UTC)
SP = "AADServicePrincipalSignInLogs"


def _record(name: str) -> str:
    return json.dumps({"TimeGenerated": "2026-03-10T05:00:00Z", "ServicePrincipalName": name, "ResultType": "0"})


def _names(loaded) -> list[str]:
    rows = EmbeddedLogSource(loaded.database, NOW).query(f"{SP} | project ServicePrincipalName | order by "
                                                         "ServicePrincipalName asc", NOW, NOW)
    return [row["ServicePrincipalName"] for row in rows]


@pytest.fixture
def folder(tmp_path) -> Path:
    logs = tmp_path / "logs"
    (logs / SP).mkdir(parents=True)
    (logs / SP / "a.jsonl").write_text(_record("a") + "\n")
    (logs / SP / "b.jsonl").write_text(_record("b") + "\n{broken\n")
    return logs


def test_an_unchanged_folder_is_reused_with_its_problems(folder, tmp_path):
    first = load_once(folder, tmp_path / "store")
    second = load_once(folder, tmp_path / "store")
    assert (first.reused, second.reused) == (False, True)
    assert _names(second) == ["a", "b"]
    assert second.report == first.report
    [problem] = second.report.problems
    assert str(problem).startswith(f"{folder / SP / 'b.jsonl'}:2: not valid JSON: ")
    assert second.loaded_at == first.loaded_at


def test_a_changed_file_loads_the_folder_again(folder, tmp_path):
    load_once(folder, tmp_path / "store")
    path = folder / SP / "a.jsonl"
    path.write_text(_record("a2") + "\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    again = load_once(folder, tmp_path / "store")
    assert not again.reused
    assert _names(again) == ["a2", "b"]


def test_a_file_touched_without_a_change_of_size_loads_again(folder, tmp_path):
    load_once(folder, tmp_path / "store")
    path = folder / SP / "a.jsonl"
    path.write_text(_record("z") + "\n")  # same length, new content
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    again = load_once(folder, tmp_path / "store")
    assert not again.reused
    assert _names(again) == ["b", "z"]


def test_an_added_file_loads_the_folder_again(folder, tmp_path):
    load_once(folder, tmp_path / "store")
    (folder / SP / "c.jsonl").write_text(_record("c") + "\n")
    again = load_once(folder, tmp_path / "store")
    assert not again.reused
    assert _names(again) == ["a", "b", "c"]


def test_a_removed_file_loads_the_folder_again(folder, tmp_path):
    load_once(folder, tmp_path / "store")
    (folder / SP / "a.jsonl").unlink()
    again = load_once(folder, tmp_path / "store")
    assert not again.reused
    assert _names(again) == ["b"]
    assert again.report.files == 1


def test_an_added_file_that_is_not_a_log_is_reported_after_reloading(folder, tmp_path):
    load_once(folder, tmp_path / "store")
    (folder / "notes.txt").write_text("hello")
    again = load_once(folder, tmp_path / "store")
    assert not again.reused
    assert again.report.unmatched == [folder / "notes.txt"]


def test_two_folders_keep_two_copies(folder, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(folder, other)
    (other / SP / "a.jsonl").unlink()
    load_once(folder, tmp_path / "store")
    assert _names(load_once(other, tmp_path / "store")) == ["b"]
    assert load_once(folder, tmp_path / "store").reused


def test_detect_says_it_reuses_the_copy_and_exits_5_for_unreadable_records(sample_tenant, tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(sample_tenant / "logs" / "AuditLogs.json", logs / "AuditLogs.json")
    (logs / f"{SP}.jsonl").write_text(_record("x") + "\n" + '{"TimeGenerated": "9999-12-31T23:00:00-05:00"}\n')
    runner = CliRunner(env={"COLUMNS": "250"})
    arguments = ["detect", "--logs", str(logs), "--now", "2026-03-15T06:00:00Z", "--since", "2026-03-12T00:00:00Z"]
    first = runner.invoke(app, arguments)
    second = runner.invoke(app, arguments)
    for result in (first, second):
        assert result.exit_code == exit_codes.UNREADABLE, result.output
        assert f"{logs / f'{SP}.jsonl'}:2: column TimeGenerated: '9999-12-31T23:00:00-05:00' is out of range" \
            in result.output
        assert "1 problem in the logs (listed above): the findings do not cover those records or files" \
            in result.output
    assert "using the loaded copy" not in first.output
    assert f"using the loaded copy of 2 files from {logs}" in second.output
