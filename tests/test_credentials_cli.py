"""`wiaudit credentials`: the stored inventory and an offline one, as a table, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from test_credentials_store import NOW, make_record
from typer.testing import CliRunner

from shared.cli import app
from shared.cli.credentials import CSV_COLUMNS
from shared.posture.model import Owner

runner = CliRunner(env={"COLUMNS": "200"})
TRICKY = 'Deploy, "prod"\nkey'
FORMULA = "=HYPERLINK(\"http://evil.example\",\"x\")"


@pytest.fixture
def stored(finding_store, monkeypatch):
    """The command's store is the test's (local_store would start Azurite under .wiaudit)."""
    records = [
        make_record(1, end_days=10, used_days_ago=1, display_name=TRICKY,
                    owners=[Owner(id="u1", name="alice@contoso.com"), Owner(id="u2", name="bob, jr")]),
        make_record(2, end_days=-3, used_days_ago=50, privileged=True, privileged_reasons=["Directory.ReadWrite.All"]),
        make_record(3, end_days=None, used_days_ago=None, principal_name=FORMULA),
        make_record(4, end_days=200, used_days_ago=5, principal_name="[bold red]markup[/]"),
    ]
    finding_store.replace_inventory(records, NOW)

    @contextmanager
    def fake_local_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", fake_local_store)
    return records


def invoke(*args: str):
    result = runner.invoke(app, ["credentials", *args])
    return result


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_table_lists_every_credential_with_its_columns(stored):
    result = invoke()
    assert result.exit_code == 0, result.output
    output = result.stdout
    for heading in ("Identity", "Credential", "Type", "End", "Last used", "Owners", "Status", "Privileged"):
        assert heading in output
    assert "4 credentials · inventory of 2026-03-08 06:00 UTC, stored by the latest audit" in output
    assert "app-2" in output and "expired" in output and "no end date" in output
    assert "30000000-0000-0000-0000-000000000001" in output  # the key id under the display name
    assert "alice@contoso.com, bob, jr" in output
    assert "[bold red]markup[/]" in output  # names are text, never Rich markup
    assert output.index("app-2") < output.index("app-1")  # soonest expiry first (expired first)


def test_csv_parses_back_one_row_per_credential_with_iso_dates(stored):
    result = invoke("--csv")
    assert result.exit_code == 0, result.output
    rows = parse_csv(result.stdout)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [row["identity"] for row in rows] == ["app-2", "app-1", "[bold red]markup[/]", "'" + FORMULA]
    first = rows[1]
    assert first["credential"] == TRICKY  # commas, quotes and the newline survive the quoting
    assert first["owners"] == "alice@contoso.com; bob, jr"
    assert first["end"] == "2026-03-18T06:00:00Z" and first["last_used"] == "2026-03-07T06:00:00Z"
    assert first["key_id"] == "30000000-0000-0000-0000-000000000001" and first["status"] == "expiring"
    assert rows[0]["privileged"] == "true" and rows[0]["privileged_reasons"] == "Directory.ReadWrite.All"
    assert rows[3]["end"] == "" and rows[3]["last_used"] == ""  # no end date, never seen


def test_json_is_the_records(stored):
    result = invoke("--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert [item["principal_name"] for item in items] == ["app-2", "app-1", "[bold red]markup[/]", FORMULA]
    assert items[1]["display_name"] == TRICKY and items[1]["end"] == "2026-03-18T06:00:00Z"


@pytest.mark.parametrize("args, expected", [
    (["--expiring-within", "30d"], [1]),
    (["--expiring-within", "P365D"], [1, 4]),
    (["--unused-for", "30d"], [2, 3]),
    (["--unused-for", "P8W"], [3]),
    (["--privileged"], [2]),
    (["--unused-for", "30d", "--privileged"], [2]),
])
def test_filters(stored, args, expected):
    for output in ("--json", "--csv"):
        result = invoke(*args, output)
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout) if output == "--json" else parse_csv(result.stdout)
        assert sorted(int(row["key_id"][-12:]) for row in rows) == expected


@pytest.mark.parametrize("args, words", [
    (["--expiring-within", "soon"], "not a span"),
    (["--unused-for", "P1M"], "not a span"),
    (["--csv", "--json"], "choose one"),
    (["--now", "2026-03-01T00:00:00Z"], "offline"),
    (["--directory", "nowhere.json"], "go together"),
])
def test_bad_options_are_usage_errors(stored, args, words):
    result = invoke(*args)
    assert result.exit_code == 2
    assert words in result.output


def test_an_empty_store_says_how_to_get_an_inventory(finding_store, monkeypatch):
    @contextmanager
    def fake_local_store(*args, **kwargs):
        yield finding_store

    monkeypatch.setattr("shared.audit.local.local_store", fake_local_store)
    result = invoke()
    assert result.exit_code == 0 and "No credential inventory is stored yet" in result.stderr
    assert parse_csv(invoke("--csv").stdout) == [] and json.loads(invoke("--json").stdout) == []


# --- offline, with the posture engine ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tenant(sample_tenant) -> Path:
    return sample_tenant


def test_offline_from_a_sample_tenant_lists_the_directorys_credentials(tenant):
    snapshot = json.loads((tenant / "directory.json").read_text())
    held = sum(len(app.get("passwordCredentials", [])) + len(app.get("keyCredentials", []))
               + len(app.get("federatedIdentityCredentials", [])) for app in snapshot["applications"])
    held += sum(len(sp.get("passwordCredentials", [])) + len(sp.get("keyCredentials", []))
                + len(sp.get("federatedIdentityCredentials", [])) for sp in snapshot["servicePrincipals"])
    result = invoke("--tenant", str(tenant), "--csv")
    assert result.exit_code == 0, result.output
    rows = parse_csv(result.stdout)
    assert len(rows) == held > 0
    assert len({(row["identity_id"], row["held_on"], row["key_id"]) for row in rows}) == len(rows)
    ends = [row["end"] for row in rows if row["end"]]
    assert ends == sorted(ends) and all(end.endswith("Z") for end in ends)
    assert any(row["last_used"] for row in rows)  # the sign-in logs were read

    table = invoke("--tenant", str(tenant))
    now = json.loads((tenant / "manifest.json").read_text())["now"]
    assert table.exit_code == 0 and f"{len(rows)} credentials · inventory of {now[:10]}" in table.stdout


def test_offline_with_directory_logs_and_now_matches_the_tenant(tenant):
    now = json.loads((tenant / "manifest.json").read_text())["now"]
    by_tenant = json.loads(invoke("--tenant", str(tenant), "--json").stdout)
    explicit = invoke("--directory", str(tenant / "directory.json"), "--logs", str(tenant / "logs"), "--now", now,
                      "--json")
    assert explicit.exit_code == 0, explicit.output
    assert json.loads(explicit.stdout) == by_tenant


def test_offline_filters_use_the_same_rules_as_the_store(tenant):
    everything = json.loads(invoke("--tenant", str(tenant), "--json").stdout)
    unused = json.loads(invoke("--tenant", str(tenant), "--unused-for", "3d", "--json").stdout)
    assert {item["key_id"] for item in unused} < {item["key_id"] for item in everything}
    assert all(item["principal_type"] != "managed identity" for item in unused)
    now = json.loads((tenant / "manifest.json").read_text())["now"].replace("Z", "+00:00")
    from datetime import datetime

    cutoff = datetime.fromisoformat(now) - timedelta(days=3)
    for item in unused:
        assert item["last_used"] is None or datetime.fromisoformat(item["last_used"].replace("Z", "+00:00")) < cutoff


def test_offline_refuses_a_folder_that_is_not_a_tenant(tmp_path):
    result = invoke("--tenant", str(tmp_path))
    assert result.exit_code == 2 and "manifest.json" in result.output
