"""What every rewrite rule works with: edits of the query text, found through its tokens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.kql.tokens import Token

Columns = Callable[[str], list[str]]  # the output columns of a query, in order


@dataclass(frozen=True)
class Edit:
    start: int
    end: int
    text: str


Rule = Callable[[str, list[Token], Columns | None], list[Edit]]


def apply(text: str, edits: list[Edit]) -> str:
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def line_keeping(text: str, start: int, end: int, replacement: str) -> Edit:
    """An edit that keeps the query's line count, so the engine's line numbers still point at the lines written."""
    missing = text.count("\n", start, end) - replacement.count("\n")
    return Edit(start, end, replacement + "\n" * max(missing, 0))


def calls(tokens: list[Token], name: str) -> list[int]:
    """Indexes of `name(` calls that are functions, not a member `.name(` of something."""
    return [i for i, token in enumerate(tokens[:-1])
            if token.is_name(name) and tokens[i + 1].text == "(" and (i == 0 or tokens[i - 1].text != ".")]


def source(text: str, tokens: list[Token], first: int, last: int) -> str:
    """The text of the tokens [first, last), as written."""
    return text[tokens[first].start:tokens[last - 1].end]


def column(name: str) -> str:
    """A column name as KQL writes it: bare when it can be, else bracketed and quoted."""
    return name if name.isidentifier() else "['" + name.replace("\\", "\\\\").replace("'", "\\'") + "']"
