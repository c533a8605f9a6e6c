"""What a hunt runs: query text from an argument, stdin, a .kql file, a Sentinel YAML, or a folder of them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

SUFFIXES = (".kql", ".yaml", ".yml")


@dataclass(frozen=True)
class HuntQuery:
    name: str  # the rule's name, the file's path, or "query"
    text: str | None  # None when the file held no query: `problem` says why
    problem: str | None = None
    path: Path | None = None  # the file it came from


def collect(target: str) -> list[HuntQuery]:
    """The queries of `target`: a folder (every .kql and YAML below it, sorted), a file, or KQL text itself."""
    path = Path(target)
    if _looks_like_path(target) and path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            raise ValueError(f"{path} holds no .kql or .yaml file")
        return [read_file(p) for p in files]
    if _looks_like_path(target) and path.is_file():
        return [read_file(path)]
    if _looks_like_path(target) and path.suffix.lower() in SUFFIXES:
        raise FileNotFoundError(f"{path} does not exist")
    return [HuntQuery("query", target)]


def _looks_like_path(target: str) -> bool:
    return "\n" not in target and "|" not in target and len(target) < 4096


def read_file(path: Path) -> HuntQuery:
    """A .kql file is the query; a YAML file is a Sentinel analytic rule or hunting query with a `query` key."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        return HuntQuery(str(path), None, f"cannot read {path}: {error}", path)
    if path.suffix.lower() == ".kql":
        return HuntQuery(str(path), text, path=path) if text.strip() else HuntQuery(str(path), None, f"{path} is empty",
                                                                                     path)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return HuntQuery(str(path), None, f"{path} is not valid YAML{where}", path)
    if not isinstance(document, dict) or not isinstance(document.get("query"), str):
        return HuntQuery(str(path), None, f"{path} has no `query` text (a Sentinel rule or hunting query has one)",
                         path)
    name = document.get("name") if isinstance(document.get("name"), str) else None
    return HuntQuery(f"{name} ({path})" if name else str(path), document["query"], path=path)
