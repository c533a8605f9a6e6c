"""Loading posture checks: strict, with every problem naming the file and the field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from shared.posture.catalog import CHECKS_DIR, PostureCatalogError, load_checks

SOURCE = CHECKS_DIR / "expired_credentials.yaml"


def _write(folder: Path, change) -> Path:
    document = yaml.safe_load(SOURCE.read_text(encoding="utf-8"))
    change(document)
    path = folder / "broken.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def _problems(tmp_path: Path, change) -> list[str]:
    _write(tmp_path, change)
    with pytest.raises(PostureCatalogError) as raised:
        load_checks(tmp_path)
    return raised.value.problems


def test_the_bundled_checks_load_and_are_found_by_id_prefix_or_file_name():
    checks = load_checks()
    expired = checks.get("expired_credentials")
    assert checks.get(expired.id[:8]) is expired
    assert "expired_credentials" in checks.stems
    with pytest.raises(KeyError, match="unknown posture check no_such_check"):
        checks.get("no_such_check")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.update(sevrity="Low"), "broken.yaml: sevrity: Extra inputs are not permitted"),
    (lambda d: d.update(severity="Urgent"), "broken.yaml: severity: Input should be"),
    (lambda d: d.update(id="NOT-A-GUID"), "broken.yaml: id: Value error, 'NOT-A-GUID' is not a lower-case GUID"),
    (lambda d: d.update(kind="Scheduled"), "broken.yaml: kind: Input should be 'Posture'"),
    (lambda d: d.update(check="no_such_function"), "broken.yaml: check: Value error, no check function"),
    (lambda d: d.update(tactics=["Exfiltration"]), "tactics: ['Exfiltration'] belong to none of the techniques"),
    (lambda d: d.update(relevantTechniques=["T98"]), "broken.yaml: relevantTechniques: Value error, not ATT&CK"),
    (lambda d: d.update(usageLookback="days"), "usageLookback: 'days' is not an int parameter"),
    (lambda d: d.update(parameters={"days": {"type": "int", "default": "30", "description": "x"}}),
     "broken.yaml: parameters.days: Value error, default '30' is not of type int"),
    (lambda d: d["tests"][0]["directory"]["applications"][0].update(passwordCredential=[]),
     "broken.yaml: tests.0.directory: Value error, unknown key(s) applications.0.passwordCredential"),
    (lambda d: d["tests"][0]["directory"]["applications"][0]["passwordCredentials"][0].update(endDate="2026-01-01"),
     "unknown key(s) applications.0.passwordCredentials.0.endDate"),
    (lambda d: d["tests"][0]["expect"][0].update(key="k"), "broken.yaml: tests.0.expect.0.key: Extra inputs"),
    (lambda d: d["tests"][0].update(parameters={"nope": 1}), "tests.0.parameters: no such parameter(s) ['nope']"),
    (lambda d: d["tests"][0]["usage"].update(credentials=[{"principal": "p", "lastUsed": "2026-01-01T00:00:00Z"}])
     if "usage" in d["tests"][0] else d["tests"][0].update(usage={"credentials": [
         {"principal": "p", "lastUsed": "2026-01-01T00:00:00Z"}]}),
     "give exactly one of keyId, thumbprint, federatedCredentialId"),
    (lambda d: d.update(tests=[t for t in d["tests"] if t["expect"]]), "needs at least one case that stays silent"),
])
def test_a_bad_check_is_refused_naming_file_and_field(tmp_path, change, expected):
    problems = _problems(tmp_path, change)
    assert any(expected in problem for problem in problems), problems
    assert all(problem.startswith(str(tmp_path / "broken.yaml")) for problem in problems)


def test_duplicate_ids_and_an_empty_folder_are_refused(tmp_path):
    shutil.copy(SOURCE, tmp_path / "a.yaml")
    shutil.copy(SOURCE, tmp_path / "b.yaml")
    with pytest.raises(PostureCatalogError, match=r"b\.yaml: id: .* is already used by"):
        load_checks(tmp_path)
    with pytest.raises(PostureCatalogError, match="no posture check files"):
        load_checks(tmp_path / "empty")
