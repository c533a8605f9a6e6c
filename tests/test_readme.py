"""The README's generated parts stay in step with the code."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from shared.cli import app

README = Path(__file__).resolve().parent.parent / "README.md"


def test_detection_table_is_current():
    text = README.read_text(encoding="utf-8")
    table = re.search(r"<!-- detections:start.*?-->\n(.*?)<!-- detections:end -->", text, re.S).group(1)
    generated = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["detections", "list", "--markdown"]).output
    assert table.strip() == generated.strip(), "regenerate it with `wiaudit detections list --markdown`"


def test_the_two_commands_are_documented():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


def test_every_setting_is_documented_in_the_readme_and_the_sample_settings():
    import json

    from shared.settings import SETTINGS

    text = README.read_text(encoding="utf-8")
    sample = json.loads((README.parent / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"]
    assert [s.name for s in SETTINGS if f"`{s.name}`" not in text] == []
    assert [s.name for s in SETTINGS if s.name not in sample] == []
