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
from shared.text import utc

RAN, REFUSED, FAILED = "ran", "refused", "failed"
CASE_ONLY = "column names that differ only in case"  # DuckDB folds case; KQL keeps AppId and AppID apart
_NEAR = re.compile(r";? ?near '([^']+)'")
_ENGINE_ROADMAP = re.compile(r"\bin this wave\b")  # duckdb-kql's notes to its own developers, no help to a reader
_CALL = re.compile(r"^(?:function|aggregate):(\w+)$")
EXPRESSIONS = {"expression:TypeLiteralExpression": "typeof()"}  # constructs duckdb-kql names by their parse node


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
        return Outcome(query, RAN, rows=source.query(hunting_parameters(query.text, since, now), since, now))
    except LogQueryError as error:
        return classify(query, error)


def hunting_parameters(text: str, since: datetime, now: datetime) -> str:
    """Sentinel's hunting blade fills `{{StartTimeISO}}` and `{{EndTimeISO}}` with the chosen time range."""
    return (text.replace("{{StartTimeISO}}", _iso(since)).replace("{{EndTimeISO}}", _iso(now)))


def _iso(moment: datetime) -> str:
    return utc(moment).isoformat().replace("+00:00", "Z")


def classify(query: HuntQuery, error: LogQueryError) -> Outcome:
    """A refusal names its construct and its position in the text as written; everything else is a failure."""
    import duckdb_kql

    cause = error.__cause__
    if isinstance(cause, duckdb_kql.KqlUnsupportedError):
        feature, offset = _construct(query.text or "", cause)
        where = f" at {line_column(query.text or '', offset)}" if offset is not None else ""
        hint = _NEAR.sub("", cause.hint or "").strip(" ;,")
        hint = f" ({hint})" if hint and not _ENGINE_ROADMAP.search(hint) else ""
        return Outcome(query, REFUSED, feature=feature, reason=f"{feature} is not supported offline{where}{hint}")
    if isinstance(cause, duckdb_kql.KqlSchemaError) and "differ only in case" in (cause.hint or ""):
        return Outcome(query, REFUSED, feature=CASE_ONLY, reason=f"{CASE_ONLY} are not supported offline: "
                                                                 f"{cause.hint}")
    if isinstance(cause, duckdb_kql.KqlSyntaxError) and cause.diagnostics:
        first = cause.diagnostics[0]
        return Outcome(query, FAILED, reason=f"syntax error at line {first.span.line}, column "
                                             f"{first.span.column + 1}: {first.message}")
    if isinstance(cause, KqlLexError):
        return Outcome(query, FAILED, reason=str(cause))
    return Outcome(query, FAILED, reason=str(error))


def _construct(text: str, error) -> tuple[str, int | None]:
    """The construct's name as KQL writes it, and its offset in `text` (the query as written, before rewriting)."""
    call = _CALL.match(error.construct)
    if call:
        name = call.group(1)
        return f"{name}()", _find(text, lambda tokens, i: tokens[i].is_name(name) and tokens[i + 1].text == "(")
    if error.construct.endswith("Operator"):
        found = _operator(text, error.construct.removesuffix("Operator").lower(),
                          error.span.line if error.span is not None else None)
        if found is not None:
            return found
    offset = _offset(text, error.span.line, error.span.column) if error.span is not None else None
    return EXPRESSIONS.get(error.construct, error.construct), offset


def _operator(text: str, wanted: str, line: int | None) -> tuple[str, int] | None:
    """The operator after a pipe whose name, without its hyphens, is `wanted` (`mvapply`: mv-apply): the one on
    `line` (the rewrite layer keeps line numbers), else the first."""
    try:
        tokens = tokenize(text)
    except KqlLexError:
        return None
    found = []
    for i in range(1, len(tokens)):
        if tokens[i - 1].text != "|" or tokens[i].kind != "name":
            continue
        name, j = tokens[i].text, i
        while (j + 2 < len(tokens) and tokens[j + 1].text == "-" and tokens[j + 2].kind == "name"
               and tokens[j + 1].start == tokens[j].end and tokens[j + 2].start == tokens[j + 1].end):
            name, j = f"{name}-{tokens[j + 2].text}", j + 2
        if name.replace("-", "").lower() == wanted:
            found.append((name, tokens[i].start))
    on_line = [match for match in found if text.count("\n", 0, match[1]) + 1 == line]
    return (on_line or found or [None])[0]


def _find(text: str, matches) -> int | None:
    try:
        tokens = tokenize(text)
    except KqlLexError:
        return None
    return next((tokens[i].start for i in range(len(tokens) - 1) if matches(tokens, i)), None)


def _offset(text: str, line: int, column: int) -> int:
    lines = text.split("\n")
    return sum(len(lines[i]) + 1 for i in range(min(line - 1, len(lines)))) + column

