"""Rewrite a KQL query into an equivalent one the embedded engine (duckdb-kql) can translate.

Each rule turns one construct Kusto documents into constructs with the same documented meaning, working on
tokens so that string literals and comments are never touched. A construct a rule cannot rewrite exactly is left
as it is, and duckdb-kql refuses it loudly. Rules run until none applies, so rewritten text is rewritten again.
"""

from __future__ import annotations

import fnmatch

from shared.kql.edits import Columns, Edit, Rule, apply, calls, column, line_keeping, source
from shared.kql.functions import column_ifexists, conditional_aggregates, extract_json, renamed_by_key
from shared.kql.tokens import Token, arguments, closing, tokenize

ALIASES = {"makeset": "make_set", "makelist": "make_list", "parsejson": "parse_json"}  # Kusto's deprecated names
# 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 as parse_ipv4 numbers
_PRIVATE_IPV4 = ((167772160, 184549375), (2886729728, 2887778303), (3232235520, 3232301055))


def rewrite(kql: str, columns: Columns | None = None) -> str:
    """`kql` with every construct a rule knows rewritten; `columns` answers the rules that need the input's
    columns (project-reorder). Without it those constructs stay as they are."""
    text = kql
    for _ in range(4 * len(tokenize(kql)) + 1):  # every pass rewrites at least one construct
        tokens = tokenize(text)
        for rule in RULES:
            edits = rule(text, tokens, columns)
            if edits:
                text = apply(text, edits)
                break
        else:
            return text
    raise RuntimeError("query rewriting did not settle")  # a rule that undoes another: a bug here, not in the query


def deprecated_aliases(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """makeset, makelist and parsejson are Kusto's old names of make_set, make_list and parse_json."""
    return [Edit(tokens[i].start, tokens[i].end, new) for old, new in ALIASES.items() for i in calls(tokens, old)]


def split_at_index(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """split(s, d, i) is the array holding the i-th substring, or an empty array when there is none: the same as
    array_slice(split(s, d), i, i). Only a literal, non-negative i (the documented zero-based index)."""
    edits = []
    for call in calls(tokens, "split"):
        parts = arguments(tokens, call + 1)
        if len(parts) != 3:
            continue
        first, last = parts[2]
        if last - first != 1 or tokens[first].kind != "number" or not tokens[first].text.isdigit():
            continue
        index = tokens[first].text
        edits.append(Edit(tokens[call].start, tokens[call].start, "array_slice("))
        edits.append(Edit(tokens[parts[1][1]].start, tokens[closing(tokens, call + 1)].end, f"), {index}, {index})"))
        return edits  # one at a time: nested calls are found again in the rewritten text
    return edits


def member_bracket_paths(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`TargetResources.[0]` is Kusto's spelling of `TargetResources[0]`."""
    return [Edit(token.start, token.end, "") for i, token in enumerate(tokens[1:-1], start=1)
            if token.text == "." and tokens[i + 1].text == "["
            and (tokens[i - 1].kind == "name" or tokens[i - 1].text in ")]")]


def join_and_keys(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`join ... on $left.a == $right.b and $left.c == $right.d` matches on both pairs, as `, ` does."""
    edits = []
    for start in (i for i, token in enumerate(tokens) if token.is_name("join")):
        on = _join_on(tokens, start)
        if on is None:
            continue
        index = on + 1
        while index < len(tokens) and tokens[index].text not in ("|", ")", ";", "}"):
            token = tokens[index]
            if token.text in ("(", "["):
                index = closing(tokens, index) + 1
                continue
            if token.is_name("and"):
                edits.append(Edit(token.start, token.end, ","))
            index += 1
    return edits


def _join_on(tokens: list[Token], join: int) -> int | None:
    """The `on` of the join at `join`: after its parameters and right side, before the next pipe."""
    index = join + 1
    while index < len(tokens):
        token = tokens[index]
        if token.text in ("(", "["):
            index = closing(tokens, index) + 1
            continue
        if token.text in ("|", ")", ";", "}"):
            return None
        if token.is_name("on"):
            return index
        index += 1
    return None


def ipv4_is_private(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """ipv4_is_private(ip): whether the address (or the network of an IP-prefix) lies in 10.0.0.0/8,
    172.16.0.0/12 or 192.168.0.0/16; null when the text is no IPv4 address, as parse_ipv4 gives null."""
    for call in calls(tokens, "ipv4_is_private"):
        parts = arguments(tokens, call + 1)
        if len(parts) != 1:
            continue
        address = source(text, tokens, *parts[0])
        return [Edit(tokens[call].start, tokens[closing(tokens, call + 1)].end, _private_test(address))]
    return []


def _private_test(address: str) -> str:
    parsed = f"parse_ipv4({address})"
    return "(" + " or ".join(f"{parsed} between ({low} .. {high})" for low, high in _PRIVATE_IPV4) + ")"


def project_reorder(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`| project-reorder a, b*` as the query's last statement is `| project` of the named and matching columns
    first (in the input's order), then every other column in the input's order. Needs the input's columns; with
    a sort order (asc, desc, granny-...) or inside a sub-query it stays as it is."""
    if columns is None:
        return []
    for index in _top_level_reorders(tokens):
        pipe = index - 1
        end = index + 3
        while end < len(tokens) and tokens[end].text not in ("|", ";"):
            end += 1
        if end < len(tokens) and tokens[end].text == ";":
            continue
        patterns = _reorder_patterns(tokens, index + 3, end)
        if patterns is None:
            continue
        available = columns(text[:tokens[pipe].start])
        first = [name for pattern in patterns for name in available if fnmatch.fnmatchcase(name, pattern)]
        ordered = list(dict.fromkeys(first + available))
        listing = ", ".join(column(name) for name in ordered)
        return [line_keeping(text, tokens[index].start, tokens[end - 1].end, f"project {listing}")]
    return []


def _top_level_reorders(tokens: list[Token]) -> list[int]:
    """Indexes of `project-reorder` outside any bracket, after the last `;` (in the query, not in a `let`)."""
    found, depth = [], 0
    for i, token in enumerate(tokens):
        if token.text in ("(", "[", "{"):
            depth += 1
        elif token.text in (")", "]", "}"):
            depth -= 1
        elif token.text == ";" and depth == 0:
            found = []
        elif (depth == 0 and token.is_name("project") and i + 2 < len(tokens) and tokens[i + 1].text == "-"
              and tokens[i + 2].is_name("reorder") and i > 0 and tokens[i - 1].text == "|"):
            found.append(i)
    return found


def _reorder_patterns(tokens: list[Token], first: int, end: int) -> list[str] | None:
    """The column names and wildcard patterns, or None when the list holds anything else (a sort order)."""
    patterns, current, previous = [], "", None
    for token in tokens[first:end]:
        if token.text == ",":
            patterns.append(current)
            current = ""
        elif token.kind == "name" or token.text == "*":
            if current and previous is not None and previous.end != token.start:
                return None  # `Name asc`: a sort order
            current += token.text
        else:
            return None
        previous = token
    patterns.append(current)
    return patterns if all(patterns) else None


def mv_apply(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`| mv-apply X = Arr on (where P | extend a = E)`: Kusto expands each record with mv-expand, runs the
    sub-query on the sub-table and unions the results. When the sub-query is only `where` and `extend` (row by
    row, so a sub-table at a time changes nothing), that is `| mv-expand X = Arr | where P | extend a = E`;
    Microsoft's Kusto parser gives both the same output columns, also when X or `a` already exists.
    `summarize`, `top`, `to typeof()`, `with_itemindex`, `limit` and several arrays stay refused."""
    for index in (i for i in range(1, len(tokens) - 3) if tokens[i - 1].text == "|" and _is_operator(tokens, i, "mv",
                                                                                                     "apply")):
        shape = _mv_apply_shape(text, tokens, index)
        if shape is None:
            continue
        name, array, opening = shape
        closing_paren = closing(tokens, opening)
        body = text[tokens[opening].end:tokens[closing_paren].start].strip()
        expansion = f"mv-expand {column(name)} = {array}" if name != array else f"mv-expand {column(name)}"
        return [line_keeping(text, tokens[index].start, tokens[closing_paren].end, f"{expansion} | {body}")]
    return []


def _mv_apply_shape(text: str, tokens: list[Token], index: int) -> tuple[str, str, int] | None:
    """(item name, array column or expression text, index of the sub-query's `(`), or None for a form this rule
    does not rewrite."""
    first = index + 3
    on = first
    while on < len(tokens) and not tokens[on].is_name("on"):
        if tokens[on].text in ("(", "["):
            on = closing(tokens, on) + 1
            continue
        if tokens[on].text in (",", "|", ";", ")") or tokens[on].is_name("to", "with_itemindex", "limit"):
            return None
        on += 1
    if on >= len(tokens) or on + 1 >= len(tokens) or tokens[on + 1].text != "(":
        return None
    named = on - first > 2 and tokens[first].kind == "name" and tokens[first + 1].text == "="
    expression = (first + 2 if named else first, on)
    if expression[1] - expression[0] < 1:
        return None
    array = source(text, tokens, *expression)
    name = tokens[first].text if named else array
    if not named and not (expression[1] - expression[0] == 1 and tokens[expression[0]].kind == "name"):
        return None  # Kusto gives an unnamed expression a random name
    return (name, array, on + 1) if _row_wise(tokens, on + 1) else None


def _row_wise(tokens: list[Token], opening: int) -> bool:
    """Whether the sub-query in the brackets at `opening` is only `where` and `extend` with named columns."""
    end = closing(tokens, opening)
    index = opening + 1
    expecting_operator, expecting_name, operator = True, False, ""
    if index == end:
        return False
    while index < end:
        token = tokens[index]
        if expecting_operator:
            if not token.is_name("where", "extend"):
                return False
            operator, expecting_operator, expecting_name = token.text, False, True
        elif token.text in ("(", "["):
            index = closing(tokens, index) + 1
            continue
        elif token.text == "|":
            expecting_operator = True
        elif token.text == ",":
            expecting_name = True
        elif operator == "extend" and expecting_name:
            if token.kind != "name" or tokens[index + 1].text != "=":
                return False  # an unnamed extend: Kusto invents its name
            expecting_name = False
        index += 1
    return True


MV_EXPAND_PARAMETERS = ("bagexpansion", "with_itemindex", "kind")


def mv_expand_paths(text: str, tokens: list[Token], columns: Columns | None) -> list[Edit]:
    """`| mv-expand TargetResources[0].modifiedProperties` names the expanded column after the path, its steps joined
    by `_` (TargetResources_0_modifiedProperties, as Microsoft's Kusto parser names it) and keeps the column the path
    starts from: the same as naming it so. Only paths of member, index and quoted-key steps on one column."""
    for index in (i for i in range(1, len(tokens) - 2) if tokens[i - 1].text == "|" and _is_operator(tokens, i,
                                                                                                     "mv", "expand")):
        for first, last in _mv_expand_items(tokens, index + 3):
            name = _path_name(tokens, first, last)
            if name is not None:
                return [Edit(tokens[first].start, tokens[first].start, f"{column(name)} = ")]
    return []


def _is_operator(tokens: list[Token], i: int, first: str, second: str) -> bool:
    return (tokens[i].is_name(first) and tokens[i + 1].text == "-" and tokens[i + 2].is_name(second)
            and tokens[i + 1].start == tokens[i].end and tokens[i + 2].start == tokens[i + 1].end)


def _mv_expand_items(tokens: list[Token], start: int) -> list[tuple[int, int]]:
    """The token ranges of the expanded expressions of an mv-expand whose list starts at `start` (after its
    parameters, up to a `to typeof(...)`, `limit` or the operator's end)."""
    index = start
    while (index + 2 < len(tokens) and tokens[index].is_name(*MV_EXPAND_PARAMETERS) and tokens[index + 1].text == "="):
        index += 3
    items, first = [], index
    while index < len(tokens) and tokens[index].text not in ("|", ";", ")") and not tokens[index].is_name("limit"):
        token = tokens[index]
        if token.text in ("(", "[", "{"):
            index = closing(tokens, index) + 1
            continue
        if token.text == "," or token.is_name("to"):
            items.append((first, index))
            while index < len(tokens) and tokens[index].text != ",":
                if tokens[index].text in ("|", ";", ")") or tokens[index].is_name("limit"):
                    return items
                index = closing(tokens, index) + 1 if tokens[index].text == "(" else index + 1
            first = index + 1
        index += 1
    items.append((first, index))
    return items


def _path_name(tokens: list[Token], first: int, last: int) -> str | None:
    """`a.b[0]['c d']` -> `a_b_0_c d`; None when the tokens are a bare column or anything but such a path."""
    if last - first < 3 or tokens[first].kind != "name" or tokens[first + 1].text == "=":
        return None
    parts, index = [tokens[first].text], first + 1
    while index < last:
        if tokens[index].text == "." and index + 1 < last and tokens[index + 1].kind == "name":
            parts.append(tokens[index + 1].text)
            index += 2
        elif (tokens[index].text == "[" and index + 2 < last and tokens[index + 2].text == "]"
              and (tokens[index + 1].text.isdigit() or _plain_string(tokens[index + 1]))):
            key = tokens[index + 1].text
            parts.append(key if key.isdigit() else key[1:-1])
            index += 3
        else:
            return None
    return "_".join(parts)


def _plain_string(token: Token) -> bool:
    return token.kind == "string" and token.text[:1] in "'\"" and "\\" not in token.text


RULES: list[Rule] = [deprecated_aliases, member_bracket_paths, join_and_keys, split_at_index, ipv4_is_private,
                     conditional_aggregates, extract_json, renamed_by_key, project_reorder, mv_apply, mv_expand_paths,
                     column_ifexists]
