"""Reading rule files (detections and posture checks alike): YAML into a strict model, every
problem named by file and field, and ids that must be unique across the folder."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class HasId(Protocol):
    id: str


Rule = TypeVar("Rule", bound=HasId)


class RuleFileError(ValueError):
    """Every problem of a folder of rule files, one per line."""

    title = "rule files are invalid"

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{self.title}:\n  " + "\n  ".join(problems))


class RuleCatalog(Generic[Rule]):
    """Loaded rules by id, each with the file it came from."""

    kind = "rules"

    def __init__(self, rules: Iterable[tuple[Path, Rule]]) -> None:
        self.paths: dict[str, Path] = {}
        self.rules: dict[str, Rule] = {}
        for path, rule in rules:
            self.paths[rule.id] = path
            self.rules[rule.id] = rule

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules.values())

    def __len__(self) -> int:
        return len(self.rules)

    def get(self, key: str) -> Rule:
        """A rule by id, or by a unique prefix of its id or its file name."""
        matches = [rule for rule in self if rule.id.startswith(key) or self.paths[rule.id].stem == key]
        if len(matches) != 1:
            raise KeyError(f"{key!r} matches {len(matches)} {self.kind}; give an id or a file name")
        return matches[0]

    @property
    def stems(self) -> set[str]:
        return {path.stem for path in self.paths.values()}


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
