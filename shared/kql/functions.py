"""Rewrite rules for functions Kusto documents and duckdb-kql does not translate, each into functions it does."""

from __future__ import annotations

import re

from shared.kql.edits import Columns, Edit, calls, column, line_keeping, source
from shared.kql.tokens import Token, arguments, closing

# conditional aggregate -> (the same aggregate over the rows where the predicate is true, Kusto's name of an
# unnamed call); take_anyif prefers a non-empty value when there is one, as Kusto documents
_OVER_MATCHES = "iff({predicate}, {value}, dynamic(null))"
_ANY_MATCH = ("coalesce(take_any(iff(({predicate}) and isnotempty({value}), {value}, dynamic(null))), "
              f"take_any({_OVER_MATCHES}))")
CONDITIONAL = {"maxif": (f"max({_OVER_MATCHES})", "maxif_{}"), "minif": (f"min({_OVER_MATCHES})", "minif_{}"),
               "take_anyif": (_ANY_MATCH, "{}"), "anyif": (_ANY_MATCH, "anyif_{}")}
# extract_json's typeof(...) -> the conversion of the extracted value; other types stay refused
_EXTRACTED = {None: "tostring({})", "string": "tostring({})", "dynamic": "{}"}
_JSON_PATH_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['([^'\\]*)'\]|\[\"([^\"\\]*)\"\]")


def conditional_aggregates(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`maxif(x, p)`, `minif(x, p)`, `take_anyif(x, p)` and its deprecated name `anyif` aggregate x over the rows
    where p is true: `max(iff(p, x, dynamic(null)))` and so on, since these aggregates skip nulls and a row where p
    is false or null gives null; take_anyif first looks among the non-empty values. An unnamed call gets the name
    Kusto gives it (maxif_x, minif_x, x, anyif_x, as Microsoft's Kusto parser names them); one whose name depends on
    an expression stays as it is."""
    for name, (template, naming) in CONDITIONAL.items():
        for call in calls(tokens, name):
            parts = arguments(tokens, call + 1)
            if len(parts) != 2:
                continue
            end = closing(tokens, call + 1)
            item = _summarize_item(tokens, call)
            if item is None:
                continue
            label = ""
            if not (tokens[item].kind == "name" and tokens[item + 1].text == "="):
                value = parts[0]
                whole = item == call and (end + 1 == len(tokens) or tokens[end + 1].text in (",", "|", ";", ")")
                                          or tokens[end + 1].is_name("by"))
                if not (whole and value[1] - value[0] == 1 and tokens[value[0]].kind == "name"):
                    continue
                label = f"{column(naming.format(tokens[value[0]].text))} = "
            value, predicate = (source(text, tokens, *part) for part in parts)
            return [Edit(tokens[call].start, tokens[end].end,
                         label + template.format(predicate=predicate, value=value))]
    return []


def _summarize_item(tokens: list[Token], call: int) -> int | None:
    """The first token of the `summarize` aggregate that holds the call at `call`, or None when it is in none."""
    depth, operator = 0, None
    for i in range(call - 1, -1, -1):
        token = tokens[i]
        if token.text in (")", "]", "}"):
            depth += 1
        elif token.text in ("(", "[", "{"):
            depth -= 1
        elif depth <= 0 and token.text in ("|", ";"):
            return None
        elif depth <= 0 and token.is_name("summarize"):
            operator = i
            break
    if operator is None:
        return None
    item, depth = operator + 1, 0
    for i in range(operator + 1, call):
        token = tokens[i]
        if token.text in ("(", "[", "{"):
            depth += 1
        elif token.text in (")", "]", "}"):
            depth -= 1
        elif depth == 0 and token.text == ",":
            item = i + 1
    return item


def extract_json(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`extract_json(path, json)` and its deprecated name `extractjson` with a literal JSONPath of member and index
    steps (`$.user.id`, `$[0]['display name']`): the element parsed from the text, as a string (or as it is with
    typeof(dynamic)); a missing element or text that is no JSON gives an empty string, as in Kusto. Wildcards,
    filters, `..` and typed conversions other than string and dynamic stay refused."""
    for name in ("extract_json", "extractjson"):
        for call in calls(tokens, name):
            parts = arguments(tokens, call + 1)
            if len(parts) not in (2, 3) or parts[0][1] - parts[0][0] != 1 or tokens[parts[0][0]].kind != "string":
                continue
            steps = _json_path(tokens[parts[0][0]].text)
            wanted = _typeof(tokens, parts[2]) if len(parts) == 3 else None
            if steps is None or wanted not in _EXTRACTED:
                continue
            element = f"parse_json({source(text, tokens, *parts[1])}){steps}"
            return [Edit(tokens[call].start, tokens[closing(tokens, call + 1)].end,
                         _EXTRACTED[wanted].format(element))]
    return []


def _json_path(literal: str) -> str | None:
    """A JSONPath string literal as KQL member and index steps, or None when it holds anything else."""
    if literal[:1] not in "'\"" or "\\" in literal:
        return None
    path = literal[1:-1]
    if not path.startswith("$"):
        return None
    steps, position = [], 1
    while position < len(path):
        match = _JSON_PATH_STEP.match(path, position)
        if match is None:
            return None
        member, index, quoted, double_quoted = match.groups()
        if member is not None:
            steps.append(f".{member}")
        elif index is not None:
            steps.append(f"[{index}]")
        else:
            key = quoted if quoted is not None else double_quoted
            steps.append(f".{key}" if key.isidentifier() else column(key))
        position = match.end()
    return "".join(steps)


def _typeof(tokens: list[Token], part: tuple[int, int]) -> str:
    """The type a `typeof(type)` argument names, or an empty string for any other argument."""
    first, last = part
    if (last - first == 4 and tokens[first].is_name("typeof") and tokens[first + 1].text == "("
            and tokens[first + 2].kind == "name" and tokens[first + 3].text == ")"):
        return tokens[first + 2].text
    return ""


def column_ifexists(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`column_ifexists('Name', default)` is the column when the operator's input has it (by exact name), else the
    default. Needs the input's columns; a computed name stays as it is."""
    if columns is None:
        return []
    for call in calls(tokens, "column_ifexists"):
        parts = arguments(tokens, call + 1)
        if len(parts) != 2 or parts[0][1] - parts[0][0] != 1 or tokens[parts[0][0]].kind != "string":
            continue
        literal = tokens[parts[0][0]].text
        if literal[:1] not in "'\"" or "\\" in literal:
            continue
        prefix = _input_of(text, tokens, call)
        if prefix is None:
            continue
        wanted = literal[1:-1]
        replacement = column(wanted) if wanted in columns(prefix) else f"({source(text, tokens, *parts[1])})"
        return [Edit(tokens[call].start, tokens[closing(tokens, call + 1)].end, replacement)]
    return []


def _input_of(text: str, tokens: list[Token], index: int) -> str | None:
    """A query whose output is the input of the operator holding the token at `index`: the statements before it
    and its pipeline up to that operator's pipe. None when the operator opens its pipeline (nothing flows in)."""
    pipe, depth = None, 0
    for i in range(index - 1, -1, -1):
        token = tokens[i]
        if token.text in (")", "]", "}"):
            depth += 1
        elif token.text in ("(", "[", "{"):
            if depth == 0:
                return _pipeline_input(text, tokens, i + 1, pipe)
            depth -= 1
        elif depth == 0 and token.text == "|" and pipe is None:
            pipe = i
        elif depth == 0 and (token.text == ";" or (token.text == "=" and i >= 2 and tokens[i - 2].is_name("let"))):
            return _pipeline_input(text, tokens, i + 1, pipe)
    return _pipeline_input(text, tokens, 0, pipe)


def _pipeline_input(text: str, tokens: list[Token], first: int, pipe: int | None) -> str | None:
    if pipe is None or pipe <= first or (first >= 2 and tokens[first - 2].is_name("on")):
        return None  # nothing flows in, or an mv-apply sub-query (its input is each record's own sub-table)
    before = text[:tokens[_statement_start(tokens, first)].start]  # the statements before this one: its lets
    return before + text[tokens[first].start:tokens[pipe].start]


def _statement_start(tokens: list[Token], index: int) -> int:
    """The first token of the top-level statement holding the token at `index`."""
    depth = 0
    start = 0
    for i, token in enumerate(tokens[:index]):
        if token.text in ("(", "[", "{"):
            depth += 1
        elif token.text in (")", "]", "}"):
            depth -= 1
        elif token.text == ";" and depth == 0:
            start = i + 1
    return start


def renamed_by_key(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`| extend AppID = AppId | summarize ... by AppID`, a copy under a name that differs only in case, is
    `| summarize ... by AppID = AppId`: the same groups under the same name, and the two names never meet (the
    embedded engine folds case, so it refuses them side by side). Only when the summarize reads the copy nowhere
    but in its `by`."""
    for i in range(1, len(tokens) - 5):
        if not (tokens[i - 1].text == "|" and tokens[i].is_name("extend") and tokens[i + 1].kind == "name"
                and tokens[i + 2].text == "=" and tokens[i + 3].kind == "name" and tokens[i + 4].text == "|"
                and tokens[i + 5].is_name("summarize")):
            continue
        copy, original = tokens[i + 1].text, tokens[i + 3].text
        if copy == original or copy.lower() != original.lower():
            continue
        by, uses, keys, index = None, [], [], i + 6
        while index < len(tokens) and tokens[index].text not in ("|", ";", ")"):
            token = tokens[index]
            if token.text in ("(", "[", "{"):
                uses += [j for j in range(index, closing(tokens, index)) if tokens[j].is_name(copy)]
                index = closing(tokens, index) + 1
                continue
            by = index if token.is_name("by") else by
            uses += [index] if token.is_name(copy) else []
            keys += [index] if token.is_name(copy) and by is not None else []
            index += 1
        assigned = keys and keys[0] + 1 < len(tokens) and tokens[keys[0] + 1].text == "="
        if len(uses) != 1 or len(keys) != 1 or assigned:
            continue
        return [line_keeping(text, tokens[i].start, tokens[i + 5].start, ""),
                Edit(tokens[keys[0]].start, tokens[keys[0]].end, f"{copy} = {original}")]
    return []
