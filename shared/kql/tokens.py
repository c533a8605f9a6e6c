"""A KQL tokenizer: enough of Kusto's lexical rules that a rewrite never touches a string literal or a comment."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<string>```.*?```|~~~.*?~~~
      |[hH]?@"(?:[^"]|"")*"|[hH]?@'(?:[^']|'')*'
      |[hH]?"(?:[^"\\\n]|\\.)*"|[hH]?'(?:[^'\\\n]|\\.)*')
  | (?P<name>[A-Za-z_$][A-Za-z0-9_]*)
  | (?P<number>[0-9][A-Za-z0-9_.]*)
  | (?P<symbol>==|!=|=~|!~|<=|>=|\.\.|<\||.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Token:
    kind: str  # name, number, string, symbol (whitespace and comments are not tokens)
    text: str
    start: int  # offset in the query text

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    def is_name(self, *names: str) -> bool:
        return self.kind == "name" and self.text in names


class KqlLexError(ValueError):
    """The text has an unterminated string literal."""


def tokenize(text: str) -> list[Token]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        assert match is not None  # the last alternative matches any character
        kind = match.lastgroup or "symbol"
        if kind == "symbol" and match.group() in "\"'":
            raise KqlLexError(f"unterminated string literal at {line_column(text, position)}")
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), position))
        position = match.end()
    return tokens


def line_column(text: str, offset: int) -> str:
    """A position as people read it: line and column, both counted from 1."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return f"line {line}, column {column}"


def closing(tokens: list[Token], opening: int) -> int:
    """The index of the bracket that closes the one at `opening`."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    depth = 0
    for index in range(opening, len(tokens)):
        text = tokens[index].text
        if tokens[index].kind != "symbol":
            continue
        if text in pairs:
            depth += 1
        elif text in pairs.values():
            depth -= 1
            if depth == 0:
                return index
    raise KqlLexError(f"unbalanced {tokens[opening].text!r} at offset {tokens[opening].start}")


def arguments(tokens: list[Token], opening: int) -> list[tuple[int, int]]:
    """The token ranges [first, last) of the comma-separated arguments inside the bracket at `opening`."""
    end = closing(tokens, opening)
    ranges = []
    first = opening + 1
    index = first
    while index < end:
        token = tokens[index]
        if token.kind == "symbol" and token.text in "([{":
            index = closing(tokens, index) + 1
            continue
        if token.kind == "symbol" and token.text == ",":
            ranges.append((first, index))
            first = index + 1
        index += 1
    if first < end or ranges:
        ranges.append((first, end))
    return ranges
