"""One local store per project: anchored to the project (or WIAUDIT_HOME), one Azurite shared by every command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient

from shared.local.home import PROJECT_ROOT, local_home
from shared.local.project_azurite import ProjectAzurite

WIAUDIT = str(Path(sys.executable).with_name("wiaudit"))


@pytest.fixture
def home(tmp_path: Path):
    """A project home of its own; its Azurite is stopped at the end, whatever the test did."""
    folder = tmp_path / "home"
    yield folder
    ProjectAzurite(folder).stop()


def _wiaudit(*arguments: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "WIAUDIT_HOME": str(home), "COLUMNS": "250"}
    environ.pop("FINDINGS_CONNECTION_STRING", None)
    environ.pop("FINDINGS_TABLE_ENDPOINT", None)
    return subprocess.run([WIAUDIT, *arguments], cwd=cwd, env=environ, capture_output=True, text=True, check=False)


def test_the_home_is_the_project_folder_whatever_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_home({}) == PROJECT_ROOT / ".wiaudit"
    assert local_home({"WIAUDIT_HOME": str(tmp_path / "elsewhere")}) == tmp_path / "elsewhere"


def test_concurrent_commands_share_one_azurite_and_stop_ends_it(home):
    azurite = ProjectAzurite(home)
    with ThreadPoolExecutor(max_workers=3) as pool:
        started = list(pool.map(lambda _: azurite.ensure_running(), range(3)))
    assert len({(running.pid, running.port) for running in started}) == 1
    assert azurite.status() == started[0]
    TableServiceClient.from_connection_string(started[0].connection_string).create_table("tshared")
    assert azurite.stop() == started[0]
    assert azurite.status() is None and not azurite.state_file.exists()
    restarted = azurite.ensure_running()
    assert restarted.pid != started[0].pid
    service = TableServiceClient.from_connection_string(restarted.connection_string)
    assert "tshared" in {table.name for table in service.list_tables()}  # the data outlives the process


def test_a_stale_state_file_starts_a_new_azurite(home):
    home.mkdir(parents=True)
    azurite = ProjectAzurite(home)
    azurite.state_file.write_text(json.dumps({"pid": 2**22 + 7, "port": 9, "location": str(azurite.location)}))
    running = azurite.ensure_running()
    assert running.pid != 2**22 + 7 and azurite.status() == running


def test_a_command_from_another_directory_uses_the_project_store(home, tmp_path):
    from shared.audit.local import local_store
    from shared.findings import Finding

    with local_store(environ={"WIAUDIT_HOME": str(home)}) as store:
        finding = Finding(detection_id="det", detection_name="Seen from anywhere", severity="High",
                          principal_id="sp-1", entities={"Account.AadUserId": "sp-1"},
                          window_start="2026-03-14T00:00:00Z", window_end="2026-03-15T00:00:00Z")
        store.upsert_findings([finding], "run-1", finding.window_end)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    listed = _wiaudit("findings", "list", "--json", cwd=elsewhere, home=home)
    assert listed.returncode == 0, listed.stderr
    assert [f["detection_name"] for f in json.loads(listed.stdout)] == ["Seen from anywhere"]
    assert not (elsewhere / ".wiaudit").exists()
    status = _wiaudit("store", "status", cwd=elsewhere, home=home)
    assert status.returncode == 0 and "Azurite is running" in status.stdout


def test_listing_findings_does_not_load_the_detection_engine():
    """What a listing imports decides how fast it answers: the KQL engine (ANTLR parser) is not among it."""
    probe = "import sys, shared.cli; print(sorted(m for m in ('duckdb_kql', 'antlr4', 'fastapi') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            check=True)
    assert loaded.stdout.strip() == "[]"


def test_two_demos_at_once_keep_every_run_record_and_notify_once(home, sample_tenant, tmp_path):
    """Both demos use the one Azurite, so the audit lease works: one runs (and notifies) while the other is refused
    or finds nothing new after it; no run record is lost to an Azurite that saved over another's data."""
    folders = [tmp_path / "a", tmp_path / "b"]
    environ = {**os.environ, "WIAUDIT_HOME": str(home), "COLUMNS": "250"}
    demos = []
    for folder in folders:
        folder.mkdir()
        demos.append(subprocess.Popen([WIAUDIT, "demo", "--tenant", str(sample_tenant)], cwd=folder, env=environ,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(demo.wait(), demo.stdout.read(), demo.stderr.read()) for demo in demos]
    for demo in demos:
        demo.stdout.close()
        demo.stderr.close()
    assert all(code in (0, 75) for code, _, _ in results), results
    ran = [out for code, out, _ in results if code == 0]
    assert ran, results
    from shared.audit.local import local_store

    with local_store(environ={"WIAUDIT_HOME": str(home)}) as store:
        stored = {run.id for run in store.list_runs(limit=10)[0]}
    printed = {line.split()[1].rstrip(":") for out in ran for line in out.splitlines() if line.startswith("Run ")}
    assert printed and printed <= stored
    teams_cards = list((home / "outbox").glob("*teams.json"))
    assert len(teams_cards) == 1, [path.name for path in teams_cards]
    assert not any((folder / ".wiaudit").exists() for folder in folders)
