"""Reading rule files (detections and posture checks alike): YAML into a strict model, every
problem named by file and field, and ids that must be unique across the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class HasId(Protocol):
    id: str


def parse_rule_file(path: Path, model: type[Model], problems: list[str]) -> Model | None:
    """The file as `model`, or None with its problems appended as `file: field: message`."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        problems.append(f"{path}: not valid YAML: {error}")
        return None
    if not isinstance(document, dict):
        problems.append(f"{path}: expected a mapping of rule fields at the top level")
        return None
    try:
        return model.model_validate(document)
    except ValidationError as error:
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "(file)"
            problems.append(f"{path}: {field}: {item['msg']}")
        return None


def duplicate_ids(loaded: list[tuple[Path, HasId]]) -> list[str]:
    seen: dict[str, Path] = {}
    problems = []
    for path, rule in loaded:
        if rule.id in seen:
            problems.append(f"{path}: id: {rule.id} is already used by {seen[rule.id]}")
        seen.setdefault(rule.id, path)
    return problems
