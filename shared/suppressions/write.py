"""`wiaudit findings suppress`: a suppression file for one finding, the narrowest that silences it (its
detection and its principal), written for review. It applies once it is in the deployed folder."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import yaml

from shared.names import Named
from shared.store.model import StoredFinding
from shared.suppressions.load import load_suppressions

HEADER = ("# Written by `wiaudit findings suppress` for review: it applies to the audit once it is committed to\n"
          "# the suppressions folder that deploys with the app. Widen `match` only deliberately.\n")


def suppression_text(finding: StoredFinding, rules: Sequence[Named], reason: str, owner: str, until: date) -> str:
    document = {"detections": [_detection_name(finding, rules)], "match": {"principal": finding.principal_id},
                "reason": reason, "owner": owner, "until": until}
    return HEADER + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


def checked_suppression_text(finding: StoredFinding, rules: Sequence[Named], reason: str, owner: str, until: date,
                             today: date) -> str:
    """The file's text, validated like every suppression (SuppressionError naming what is wrong)."""
    text = suppression_text(finding, rules, reason, owner, until)
    with tempfile.TemporaryDirectory() as staging:
        (Path(staging) / f"{suppression_stem(finding, rules)}.yaml").write_text(text, encoding="utf-8")
        load_suppressions(Path(staging), rules, today)
    return text


def write_suppression(folder: Path, finding: StoredFinding, rules: Sequence[Named], reason: str, owner: str,
                      until: date, today: date) -> Path:
    """The new file's path. It is validated like every suppression first (SuppressionError, nothing written)."""
    text = checked_suppression_text(finding, rules, reason, owner, until, today)
    path = _free_path(folder, suppression_stem(finding, rules))
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def suppression_stem(finding: StoredFinding, rules: Sequence[Named]) -> str:
    """The file name (without .yaml) a suppression of this finding gets."""
    return _slug(f"{_detection_name(finding, rules)}-{finding.principal_name or finding.principal_id}")


def _detection_name(finding: StoredFinding, rules: Sequence[Named]) -> str:
    """The rule's file name (what people read), or its id when the catalog no longer has it."""
    return next((rule.names[1] for rule in rules if rule.id == finding.detection_id), finding.detection_id)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.-]+", "-", text.lower()).strip("-.")[:90] or "suppression"


def _free_path(folder: Path, stem: str) -> Path:
    path, n = folder / f"{stem}.yaml", 2
    while path.exists():
        path, n = folder / f"{stem}-{n}.yaml", n + 1
    return path
