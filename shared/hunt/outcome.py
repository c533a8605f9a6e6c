"""Run hunt queries one by one: each ran (with its rows), was refused (naming the unsupported operator or function
and where it is), or failed (a syntax error, an unknown table or column...). One query's trouble never stops the
others."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from shared.hunt.queries import HuntQuery
from shared.kql.tokens import KqlLexError, line_column, tokenize
from shared.logsource.base import LogQueryError, LogSource, Row

RAN, REFUSED, FAILED = "ran", "refused", "failed"
_NEAR = re.compile(r"near '([^']+)'")
_CALL = re.compile(r"^(?:function|aggregate):(\w+)$")
_OPERATOR = re.compile(r"[a-z]+(?:-[a-z]+)*")


@dataclass(frozen=True)
class Outcome:
    query: HuntQuery
    status: str  # ran, refused or failed
    rows: list[Row] = field(default_factory=list)
    feature: str | None = None  # what was refused: `project-reorder`, `anyif()`...
    reason: str | None = None  # for people: what and where


def run_queries(source: LogSource, queries: Iterable[HuntQuery], since: datetime, now: datetime) -> list[Outcome]:
    return [run_query(source, query, since, now) for query in queries]


def run_query(source: LogSource, query: HuntQuery, since: datetime, now: datetime) -> Outcome:
    if query.text is None:
        return Outcome(query, FAILED, reason=query.problem)
    try:
        return Outcome(query, RAN, rows=source.query(query.text, since, now))
    except LogQueryError as error:
        return classify(query, error)


def classify(query: HuntQuery, error: LogQueryError) -> Outcome:
    """A refusal names its construct and its position in the text as written; everything else is a failure."""
    import duckdb_kql

    cause = error.__cause__
    if isinstance(cause, duckdb_kql.KqlUnsupportedError):
        feature, offset = _construct(query.text or "", cause)
        where = f" at {line_column(query.text or '', offset)}" if offset is not None else ""
        hint = f" ({cause.hint})" if cause.hint else ""
        return Outcome(query, REFUSED, feature=feature, reason=f"{feature} is not supported offline{where}{hint}")
    if isinstance(cause, duckdb_kql.KqlSyntaxError) and cause.diagnostics:
        first = cause.diagnostics[0]
        return Outcome(query, FAILED, reason=f"syntax error at line {first.span.line}, column "
                                             f"{first.span.column + 1}: {first.message}")
    if isinstance(cause, KqlLexError):
        return Outcome(query, FAILED, reason=str(cause))
    return Outcome(query, FAILED, reason=str(error))


def _construct(text: str, error) -> tuple[str, int | None]:
    """The construct's name as KQL writes it, and its offset in `text` (the query before any rewriting)."""
    call = _CALL.match(error.construct)
    if call:
        name = call.group(1)
        return f"{name}()", _find(text, lambda tokens, i: tokens[i].is_name(name) and tokens[i + 1].text == "(")
    near = _NEAR.search(error.hint or "")
    offset = text.find(near.group(1)) if near else -1
    if offset < 0 and error.span is not None:
        offset = _offset(text, error.span.line, error.span.column)
    written = _OPERATOR.match(text, offset) if offset >= 0 and error.construct.endswith("Operator") else None
    return (written.group() if written else error.construct), (offset if offset >= 0 else None)


def _find(text: str, matches) -> int | None:
    try:
        tokens = tokenize(text)
    except KqlLexError:
        return None
    return next((tokens[i].start for i in range(len(tokens) - 1) if matches(tokens, i)), None)


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(lines[i]) + 1 for i in range(min(line - 1, len(lines)))) + column

