"""The loader refuses a bad detection file with an error naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from shared.catalog.loader import DETECTIONS_DIR, CatalogError, load_catalog

SOURCE = DETECTIONS_DIR / "sp_signin_failures.yaml"


def _write(folder: Path, name: str, document: dict) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _problems(folder: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(folder)
    return caught.value.problems


@pytest.fixture
def rule() -> dict:
    return yaml.safe_load(SOURCE.read_text(encoding="utf-8"))


def test_a_valid_file_loads(tmp_path):
    shutil.copy(SOURCE, tmp_path / SOURCE.name)
    assert [d.name for d in load_catalog(tmp_path)] == ["Service principal sign-in failures"]


@pytest.mark.parametrize(("change", "field", "message"), [
    (lambda r: r.pop("severity"), "severity", "Field required"),
    (lambda r: r.update(severity="Critical"), "severity", "'Informational', 'Low', 'Medium' or 'High'"),
    (lambda r: r.update(id="not-a-guid"), "id", "not a lower-case GUID"),
    (lambda r: r.update(sevrity="High"), "sevrity", "Extra inputs are not permitted"),
    (lambda r: r.update(queryFrequency="daily"), "queryFrequency", "not a timespan"),
    (lambda r: r.update(relevantTechniques=["1110"]), "relevantTechniques", "not ATT&CK technique ids"),
    (lambda r: r.update(tactics=["Hacking"]), "tactics.0", "Input should be"),
    (lambda r: r.update(query=r["query"].replace("WindowStart", "ago(1d)", 1)), "query", "never now() or ago()"),
    (lambda r: r.update(tests=[t for t in r["tests"] if t["expect"]]), "(file)", "stays silent"),
    (lambda r: r.update(tests=[t for t in r["tests"] if not t["expect"]]), "(file)", "fires"),
])
def test_schema_problems_name_file_and_field(tmp_path, rule, change, field, message):
    change(rule)
    path = _write(tmp_path, "rule.yaml", rule)
    problems = _problems(tmp_path)
    assert any(p.startswith(f"{path}: {field}") and message in p for p in problems), problems


def test_unknown_table_is_named(tmp_path, rule):
    rule["requiredDataConnectors"][0]["dataTypes"] = ["AADServicePrincipalSignInLog"]
    path = _write(tmp_path, "rule.yaml", rule)
    assert f"{path}: requiredDataConnectors.0.dataTypes: unknown table 'AADServicePrincipalSignInLog'" in _problems(
        tmp_path)


def test_unknown_table_in_test_rows_is_named(tmp_path, rule):
    rule["tests"][0]["rows"]["SigninLog"] = [{}]
    path = _write(tmp_path, "rule.yaml", rule)
    assert f"{path}: tests.0.rows: unknown table 'SigninLog'" in _problems(tmp_path)


def test_entity_mapping_must_name_an_output_column(tmp_path, rule):
    rule["entityMappings"][1]["fieldMappings"][0]["columnName"] = "SourceIP"
    path = _write(tmp_path, "rule.yaml", rule)
    problems = _problems(tmp_path)
    assert any(p.startswith(f"{path}: entityMappings.1.fieldMappings.0.columnName: 'SourceIP' is not an output column")
               for p in problems), problems


def test_a_query_the_engine_cannot_run_is_named(tmp_path, rule):
    rule["query"] = rule["query"].replace("| where ResultType != \"0\"", "| where ResultTyp != \"0\"")
    path = _write(tmp_path, "rule.yaml", rule)
    assert any(p.startswith(f"{path}: query: the embedded engine rejects it") for p in _problems(tmp_path))


def test_duplicate_ids_name_both_files(tmp_path, rule):
    first = _write(tmp_path, "a.yaml", rule)
    second = _write(tmp_path, "b.yaml", {**rule, "name": "Another name"})
    assert f"{second}: id: {rule['id']} is already used by {first}" in _problems(tmp_path)


def test_every_problem_of_every_file_is_reported_at_once(tmp_path, rule):
    _write(tmp_path, "a.yaml", {**rule, "severity": "Severe"})
    _write(tmp_path, "b.yaml", {**rule, "id": "nope"})
    (tmp_path / "c.yaml").write_text("id: [unclosed", encoding="utf-8")
    problems = _problems(tmp_path)
    assert {Path(p.split(":")[0]).name for p in problems} == {"a.yaml", "b.yaml", "c.yaml"}


def test_an_empty_folder_is_an_error(tmp_path):
    assert _problems(tmp_path) == [f"{tmp_path}: no detection files (*.yaml)"]


@pytest.mark.parametrize(("period", "lookback", "message"), [
    ("15d", "0d", "over Sentinel's maximum of 14d"),
    ("1d", "1d", "must cover queryFrequency 1d plus lookback 1d"),
])
def test_query_period_fits_sentinel_and_covers_the_lookback(tmp_path, rule, period, lookback, message):
    rule.update(queryPeriod=period, lookback=lookback)
    path = _write(tmp_path, "rule.yaml", rule)
    assert any(p.startswith(f"{path}: (file)") and message in p for p in _problems(tmp_path))
