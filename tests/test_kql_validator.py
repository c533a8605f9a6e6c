"""Query validation with Microsoft's Kusto parser: real Node, real parser, no mocks."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.kql.validator import (
    Diagnostic,
    KustoParserUnavailable,
    QueryCheck,
    validate_queries,
)

SP = "AADServicePrincipalSignInLogs"

GOOD = f"""{SP}
| where TimeGenerated between (WindowStart - 30d .. WindowStart)
| where ResultType == "0"
| extend Country = tostring(parse_json(LocationDetails).countryOrRegion)
| summarize SignIns = count(), Countries = make_set(Country) by ServicePrincipalId, AppId
| project ServicePrincipalId, AppId, SignIns, Countries"""

QUERIES = {
    "good": GOOD,
    "unknown_column": f"{SP} | where NoSuchColumn == 'x'",
    "unknown_table": "NoSuchTable | take 1",
    "unknown_function": f"{SP} | extend x = no_such_function(AppId)",
    "type_error": f"{SP} | where TimeGenerated > 'yesterday'",
    "deprecated": f"{SP} | summarize Apps = makeset(AppId) by ServicePrincipalId",
    "string_json": f"{SP} | extend Country = tostring(LocationDetails.countryOrRegion)",
    "parsed_json": f"{SP} | extend Country = tostring(parse_json(LocationDetails).countryOrRegion)",
    "window_end": f"{SP} | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd | count",
    "third_line": f"{SP}\n| where TimeGenerated > ago(1d)\n| where   Bogus == 1",
    "style_only": f"{SP} | where AppId contains 'abc'",
    "watchlist": f"let Apps = toscalar(_GetWatchlist('Apps') | summarize make_list(SearchKey));\n"
                 f"{SP} | where AppId in~ (Apps) | project AppId",
    "watchlist_column": "_GetWatchlist('Apps') | project NoSuchColumn",
}


@pytest.fixture(scope="module")
def checks() -> dict[str, QueryCheck]:
    return validate_queries(list(QUERIES.items()))


def codes(check: QueryCheck) -> set[str]:
    return {d.code for d in check.errors}


def test_every_query_gets_a_check(checks):
    assert set(checks) == set(QUERIES)


def test_good_query_has_no_errors_and_reports_its_output_columns(checks):
    assert checks["good"].errors == ()
    assert checks["good"].columns == ("ServicePrincipalId", "AppId", "SignIns", "Countries")


def test_summarize_output_columns_are_group_keys_then_aggregates():
    (check,) = validate_queries([("q", f"{SP} | summarize n = count() by AppId")]).values()
    assert check.columns == ("AppId", "n")


def test_window_variables_are_declared(checks):
    assert checks["window_end"].errors == ()
    assert checks["window_end"].columns == ("Count",)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("unknown_column", "KS142"),
        ("unknown_table", "KS204"),
        ("unknown_function", "KS211"),
        ("type_error", "KS106"),
        ("deprecated", "KS507"),
        ("watchlist_column", "KS142"),
    ],
)
def test_mistakes_are_errors(checks, name, code):
    assert code in codes(checks[name])


def test_sentinel_watchlist_function_is_declared_with_the_columns_every_watchlist_has(checks):
    assert checks["watchlist"].errors == () and checks["watchlist"].columns == ("AppId",)


def test_deprecated_function_message_names_the_replacement(checks):
    (error,) = checks["deprecated"].errors
    assert "make_set" in error.message


def test_string_typed_json_column_needs_parse_json(checks):
    assert "KS142" in codes(checks["string_json"])
    assert "countryOrRegion" in checks["string_json"].errors[0].message
    assert checks["parsed_json"].errors == ()


def test_style_suggestions_are_warnings_not_errors(checks):
    check = checks["style_only"]
    assert check.errors == ()
    assert [d.code for d in check.diagnostics] == ["KS500"]
    assert check.diagnostics[0].severity == "warning"


def test_positions_are_relative_to_the_query_not_the_header(checks):
    assert checks["third_line"].errors == (
        Diagnostic(
            code="KS142",
            severity="error",
            message="The name 'Bogus' does not refer to any known column, table, variable or function.",
            line=3,
            column=11,
        ),
    )
    (error,) = checks["unknown_table"].errors
    assert (error.line, error.column) == (1, 1)


def test_explicit_tables_replace_the_known_schemas():
    from shared.tables import TableSchema

    tables = {"Mini": TableSchema("Mini", {"When": "DateTime", "Who": "Guid", "Bag": "Dynamic"})}
    checks = validate_queries(
        [("mini", "Mini | extend x = tostring(Bag.a) | project Who, x"), ("sp", f"{SP} | take 1")], tables
    )
    assert checks["mini"].errors == ()
    assert checks["mini"].columns == ("Who", "x")
    assert "KS204" in codes(checks["sp"])


def test_duplicate_names_are_rejected():
    with pytest.raises(ValueError, match="unique"):
        validate_queries([("a", "print 1"), ("a", "print 2")])


def test_missing_parser_package_is_a_clear_error(tmp_path: Path):
    with pytest.raises(KustoParserUnavailable, match=r"@kusto/language-service-next.*make setup"):
        validate_queries([("q", "print 1")], node_modules=tmp_path)
