"""The rewrite layer's function rules (shared/kql/functions.py): each gives the rows Kusto's documentation gives,
with nulls, empty strings and dynamic values, run through the embedded source; a form the rules cannot rewrite
exactly is still refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.kql.rewrite import rewrite
from shared.logsource.base import LogQueryError
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
DAY = datetime(2026, 3, 1, tzinfo=UTC)
SIGNINS = """datatable(Sp: string, Failed: bool, At: datetime, Ip: string, Detail: dynamic) [
  "a", false, datetime(2026-03-01), "10.0.0.1", dynamic({"city": "Oslo"}),
  "a", true, datetime(2026-03-03), "203.0.113.1", dynamic(null),
  "a", false, datetime(2026-03-05), "", dynamic([1, 2]),
  "b", true, datetime(2026-03-02), "198.51.100.7", dynamic({"city": ""}),
  "b", bool(null), datetime(2026-03-04), "198.51.100.8", dynamic({}),
  "c", false, datetime(null), "192.0.2.1", dynamic("text")]
"""


@pytest.fixture(scope="module")
def source() -> EmbeddedLogSource:
    return EmbeddedLogSource(LogDatabase(), NOW)


def run(source: EmbeddedLogSource, kql: str) -> list[dict]:
    return source.query(kql, NOW - timedelta(days=30), NOW)


def by_sp(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda row: row["Sp"])


def test_maxif_and_minif_aggregate_the_rows_where_the_predicate_is_true(source):
    # learn.microsoft.com/kusto/query/maxif-aggregation-function: the maximum of expr in records where predicate
    # is true; a group with no such record (b: one false, one null predicate) gives null; a null value is skipped
    rows = run(source, SIGNINS + "| summarize LastGood = maxif(At, not(Failed)), FirstBad = minif(At, Failed), "
                                 "maxif(At, Failed) by Sp")
    assert by_sp(rows) == [
        {"Sp": "a", "LastGood": DAY + timedelta(days=4), "FirstBad": DAY + timedelta(days=2),
         "maxif_At": DAY + timedelta(days=2)},
        {"Sp": "b", "LastGood": None, "FirstBad": DAY + timedelta(days=1), "maxif_At": DAY + timedelta(days=1)},
        {"Sp": "c", "LastGood": None, "FirstBad": None, "maxif_At": None}]
    assert [list(row) for row in rows] == [["Sp", "LastGood", "FirstBad", "maxif_At"]] * 3


def test_unnamed_conditional_aggregates_get_kusto_names(source):
    # the names Microsoft's Kusto parser gives: maxif_x, minif_x, take_anyif(x) is x, anyif(x) is anyif_x
    rows = run(source, SIGNINS + "| where Sp == 'b' | summarize maxif(Ip, Failed), minif(Ip, isnotnull(Failed)), "
                                 "take_anyif(Ip, isnull(Failed)), anyif(Ip, Failed)")
    assert rows == [{"maxif_Ip": "198.51.100.7", "minif_Ip": "198.51.100.7", "Ip": "198.51.100.8",
                     "anyif_Ip": "198.51.100.7"}]


def test_take_anyif_prefers_a_non_empty_value(source):
    # learn.microsoft.com/kusto/query/take-anyif-aggregation-function: "If such a value is present, the function
    # attempts to return a non-null/non-empty value"; a's matching rows hold "" and two addresses
    rows = run(source, SIGNINS + "| where Sp == 'a' | summarize Ip = take_anyif(Ip, not(Failed) or Failed), "
                                 "Last = take_anyif(Ip, At > datetime(2026-03-04))")
    assert rows[0]["Ip"] in ("10.0.0.1", "203.0.113.1") and rows[0]["Last"] == ""


def test_take_anyif_keeps_empty_strings_and_dynamic_values_and_is_null_without_a_match(source):
    rows = run(source, SIGNINS + "| summarize Empty = take_anyif(Ip, isnull(At) or Ip == ''), "
                                 "Bag = take_anyif(Detail, Sp == 'b' and isnull(Failed)), "
                                 "None = take_anyif(Ip, Sp == 'z'), NoBag = anyif(Detail, Sp == 'z') by Sp")
    assert by_sp(rows) == [{"Sp": "a", "Empty": "", "Bag": None, "None": None, "NoBag": None},
                           {"Sp": "b", "Empty": None, "Bag": {}, "None": None, "NoBag": None},
                           {"Sp": "c", "Empty": "192.0.2.1", "Bag": None, "None": None, "NoBag": None}]


def test_conditional_aggregates_whose_kusto_name_is_an_expression_stay_refused(source):
    with pytest.raises(LogQueryError, match="unsupported KQL construct 'aggregate:take_anyif'"):
        run(source, SIGNINS + "| summarize take_anyif(strcat(Ip, '!'), Failed)")
    assert rewrite("T | summarize n = 1 + maxif(a, b)") == "T | summarize n = 1 + max(iff(b, a, dynamic(null)))"
    assert rewrite("T | summarize 1 + maxif(a, b)") == "T | summarize 1 + maxif(a, b)"


JSON = """datatable(Id: string, Text: string) [
  "obj", '{"user": {"id": "u1", "ip": "10.0.0.1"}, "targets": [{"id": "t1"}, {"id": "t2"}], "a b": 7}',
  "list", '[{"id": "first", "displayName": "First"}]',
  "empty", '',
  "bad", 'not json',
  "nulls", '{"user": null, "targets": []}']
"""


def test_extract_json_reads_members_and_indexes_as_strings(source):
    # learn.microsoft.com/kusto/query/extract-json-function: the element at the JSONPath, a string unless a type
    # is asked for; no match (or text that is no JSON) gives an empty string
    rows = run(source, JSON + "| project Id, User = extract_json('$.user.id', Text), "
                              "Second = extractjson(\"$.targets[1].id\", Text), First = extractjson('$[0].id', Text), "
                              "Spaced = extract_json(\"$['a b']\", Text), Whole = extract_json('$.user', Text)")
    assert sorted(rows, key=lambda row: row["Id"]) == [
        {"Id": "bad", "User": "", "Second": "", "First": "", "Spaced": "", "Whole": ""},
        {"Id": "empty", "User": "", "Second": "", "First": "", "Spaced": "", "Whole": ""},
        {"Id": "list", "User": "", "Second": "", "First": "first", "Spaced": "", "Whole": ""},
        {"Id": "nulls", "User": "", "Second": "", "First": "", "Spaced": "", "Whole": ""},
        {"Id": "obj", "User": "u1", "Second": "t2", "First": "", "Spaced": "7",
         "Whole": '{"id":"u1","ip":"10.0.0.1"}'}]


def test_extract_json_as_dynamic_keeps_the_value(source):
    rows = run(source, JSON + "| where Id in ('obj', 'nulls') | project Id, "
                              "T = extract_json('$.targets', Text, typeof(dynamic)), "
                              "S = extract_json('$.user.id', Text, typeof(string))")
    assert sorted(rows, key=lambda row: row["Id"]) == [{"Id": "nulls", "T": [], "S": ""},
                                                       {"Id": "obj", "T": [{"id": "t1"}, {"id": "t2"}], "S": "u1"}]


def test_extract_json_paths_and_types_it_cannot_rewrite_stay_refused(source):
    for call in ("extract_json('$.targets[*].id', Text)", "extract_json('$..id', Text)",
                 "extract_json('$.a', Text, typeof(long))", "extractjson(strcat('$.', Id), Text)"):
        with pytest.raises(LogQueryError, match="unsupported KQL construct"):
            run(source, JSON + f"| project v = {call}")


def test_column_ifexists_is_the_column_when_the_input_has_it_else_the_default(source):
    # learn.microsoft.com/kusto/query/column-ifexists-function: names are case-sensitive
    rows = run(source, SIGNINS + "| where Sp == 'c' | project Sp, Have = column_ifexists('Ip', 'none'), "
                                 "Case = column_ifexists('ip', 'none'), Missing = column_ifexists('Gone', 0), "
                                 "Bag = column_ifexists('Detail', dynamic(null))")
    assert rows == [{"Sp": "c", "Have": "192.0.2.1", "Case": "none", "Missing": 0, "Bag": "text"}]


def test_column_ifexists_in_lets_and_sub_queries_reads_that_pipeline_s_input(source):
    kql = ("let T = datatable(k: string, v: long) ['a', 1];\n"
           "let U = T | extend c = column_ifexists('v', -1), d = column_ifexists('w', -1);\n"
           "U | join kind=inner (T | project k, e = column_ifexists('c', 'absent')) on k | project k, c, d, e")
    assert run(source, kql) == [{"k": "a", "c": 1, "d": -1, "e": "absent"}]
    kql = "let T = datatable(k: string, v: long) ['a', 1];\nT | extend w = column_ifexists('v', 0) | project w"
    assert run(source, kql) == [{"w": 1}]


def test_column_ifexists_with_a_computed_name_stays_refused(source):
    with pytest.raises(LogQueryError, match="unsupported KQL construct 'function:column_ifexists'"):
        run(source, SIGNINS + "| project v = column_ifexists(strcat('I', 'p'), '')")


def test_a_copy_under_a_case_only_different_name_grouped_at_once_runs(source):
    # `extend AppID = AppId | summarize ... by AppID`: Kusto keeps both names; the result has only AppID
    rows = run(source, "datatable(AppId: string, n: long) ['x', 1, 'x', 2, 'y', 3, '', 4]\n"
                       "| extend AppID = AppId\n| summarize make_list(n), Total = sum(n) by AppID")
    assert sorted(rows, key=lambda row: row["AppID"]) == [{"AppID": "", "list_n": [4], "Total": 4},
                                                          {"AppID": "x", "list_n": [1, 2], "Total": 3},
                                                          {"AppID": "y", "list_n": [3], "Total": 3}]
    assert [list(row) for row in rows] == [["AppID", "list_n", "Total"]] * 3


def test_case_only_names_side_by_side_stay_refused(source):
    for kql in ("datatable(AppId: string) ['x'] | extend AppID = AppId",
                "datatable(AppId: string) ['x'] | extend AppID = AppId | summarize dcount(AppID) by AppID"):
        with pytest.raises(LogQueryError, match="differ only in case"):
            run(source, kql)


def test_the_rules_keep_line_numbers_and_leave_strings_alone():
    kql = "T\n| extend AppID = AppId\n| summarize by AppID\n| where x == \"maxif(a, b)\""
    assert rewrite(kql).count("\n") == kql.count("\n")
    assert "maxif(a, b)" in rewrite(kql)


def test_conditional_aggregates_inside_a_named_expression_keep_its_name():
    assert rewrite("T | summarize n = strcat(x, maxif(a, b)), m = tostring(minif(c, d)) by k") == (
        "T | summarize n = strcat(x, max(iff(b, a, dynamic(null)))), m = tostring(min(iff(d, c, dynamic(null)))) by k")
    assert rewrite("T | summarize strcat(x, maxif(a, b))") == "T | summarize strcat(x, maxif(a, b))"
    assert rewrite("T | extend m = maxif(a, b)") == "T | extend m = maxif(a, b)"


def test_a_copy_used_inside_a_grouping_expression_stays_as_it_is():
    kql = "T | extend AppID = AppId | summarize count() by bin(AppID, 1)"
    assert rewrite(kql) == kql


def test_column_ifexists_in_a_row_wise_mv_apply_reads_the_expanded_rows(source):
    rows = run(source, "datatable(Id: string, Arr: dynamic) ['a', dynamic([1, 2]), 'b', dynamic([])]\n"
                       "| mv-apply x = Arr on (where x > 1 | extend Seen = column_ifexists('x', -1), "
                       "Other = column_ifexists('y', -1))\n| project Id, x, Seen, Other")
    assert rows == [{"Id": "a", "x": 2, "Seen": 2, "Other": -1}]


def test_column_ifexists_in_an_aggregating_mv_apply_stays_refused(source):
    with pytest.raises(LogQueryError, match="unsupported KQL construct"):
        run(source, "datatable(Id: string, Arr: dynamic) ['a', dynamic([1, 2])]\n"
                    "| mv-apply x = Arr on (extend y = column_ifexists('x', 0) | summarize n = sum(y))")
