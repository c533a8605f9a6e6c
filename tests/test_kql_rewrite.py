"""The rewrite layer: each construct gives the rows Kusto's documentation gives, run through the embedded source;
strings and comments are never rewritten; what stays unsupported is still refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.kql.rewrite import rewrite
from shared.kql.tokens import KqlLexError, tokenize
from shared.logsource.base import LogQueryError
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource

NOW = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def source() -> EmbeddedLogSource:
    database = LogDatabase()
    database.insert("AuditLogs", [
        (None, {"TimeGenerated": NOW - timedelta(hours=1), "Id": "a1", "OperationName": "Add owner",
                "TargetResources": [{"id": "t1", "modifiedProperties": [{"displayName": "p1"}]}],
                "InitiatedBy": {"app": {"servicePrincipalId": "sp1"}}}),
        (None, {"TimeGenerated": NOW - timedelta(hours=2), "Id": "a2", "OperationName": "Add member",
                "TargetResources": [{"id": "t2"}], "InitiatedBy": {"app": {"servicePrincipalId": "sp2"}}}),
    ])
    database.insert("AADServicePrincipalSignInLogs", [
        (None, {"TimeGenerated": NOW - timedelta(hours=1), "Id": "s1", "ServicePrincipalId": "sp1",
                "AppId": "app1", "IPAddress": "10.1.2.3"}),
        (None, {"TimeGenerated": NOW - timedelta(hours=1), "Id": "s2", "ServicePrincipalId": "sp2",
                "AppId": "other", "IPAddress": "203.0.113.9"}),
    ])
    return EmbeddedLogSource(database, NOW)


def run(source: EmbeddedLogSource, kql: str) -> list[dict]:
    return source.query(kql, NOW - timedelta(days=1), NOW)


def test_split_with_an_index_is_the_array_of_that_substring(source):
    # learn.microsoft.com/kusto/query/split-function: split("aaa_bbb_ccc", "_", 1) == ["bbb"]
    rows = run(source, 'print a = split("aaa_bbb_ccc", "_", 1), b = split("aaa_bbb_ccc", "_", 7), '
                       'c = split("", "_", 0), d = split("a__b", "_", 1)')
    assert rows == [{"a": ["bbb"], "b": [], "c": [""], "d": [""]}]


def test_split_of_a_null_string_is_like_kusto_an_empty_string(source):
    rows = run(source, 'AuditLogs | where Id == "a1" | extend s = split(tostring(InitiatedBy.user.id), ".", 0) '
                       "| project s")
    assert rows == [{"s": [""]}]


def test_deprecated_aliases_run_as_their_new_names(source):
    rows = run(source, 'AuditLogs | summarize ops = makeset(OperationName), ids = makelist(Id) '
                       '| extend p = parsejson(\'{"k": null}\') | project ops = array_sort_asc(ops), ids = '
                       "array_sort_asc(ids), p")
    assert rows == [{"ops": ["Add member", "Add owner"], "ids": ["a1", "a2"], "p": {"k": None}}]


def test_member_bracket_path_is_the_indexed_element(source):
    rows = run(source, "AuditLogs | project Id, t = tostring(TargetResources.[0].id), "
                       "p = tostring(TargetResources.[0].modifiedProperties.[0].displayName) | order by Id asc")
    assert rows == [{"Id": "a1", "t": "t1", "p": "p1"}, {"Id": "a2", "t": "t2", "p": ""}]


def test_join_on_two_key_pairs_with_and_matches_both(source):
    kql = """AADServicePrincipalSignInLogs
| join kind=inner (AuditLogs | extend Sp = tostring(InitiatedBy.app.servicePrincipalId), App = "app1")
  on $left.ServicePrincipalId == $right.Sp and $left.AppId == $right.App
| project Id, Id1"""
    assert run(source, kql) == [{"Id": "s1", "Id1": "a1"}]


def test_ipv4_is_private_as_documented(source):
    # learn.microsoft.com/kusto/query/ipv4-is-private-function: the documented examples
    rows = run(source, "print a = ipv4_is_private('192.168.1.1/24'), b = ipv4_is_private('10.1.2.3/24'), "
                       "c = ipv4_is_private('202.1.2.3'), d = ipv4_is_private(\"127.0.0.1\"), "
                       "e = ipv4_is_private('172.31.255.255'), f = ipv4_is_private('172.32.0.0'), "
                       "g = ipv4_is_private('not an address'), h = ipv4_is_private('')")
    assert rows == [{"a": True, "b": True, "c": False, "d": False, "e": True, "f": False, "g": None, "h": None}]


def test_ipv4_is_private_over_a_column(source):
    rows = run(source, "AADServicePrincipalSignInLogs | where not(ipv4_is_private(IPAddress)) | project Id")
    assert rows == [{"Id": "s2"}]


def test_project_reorder_puts_named_then_matching_columns_first(source):
    # the documented examples: `print a, b, c | project-reorder b` gives b, a, c
    rows = run(source, "print a = 'a', b = 'b', c = 'c' | project-reorder b")
    assert [list(row) for row in rows] == [["b", "a", "c"]]
    rows = run(source, "print b = 'b', a2 = 'a2', a3 = 'a3', a1 = 'a1', c = 1 | project-reorder c, a*")
    assert [list(row) for row in rows] == [["c", "a2", "a3", "a1", "b"]]
    assert rows[0] == {"c": 1, "a2": "a2", "a3": "a3", "a1": "a1", "b": "b"}


def test_project_reorder_after_lets_and_with_nulls(source):
    kql = ("let Ops = AuditLogs | project Id, OperationName, Missing = tostring(InitiatedBy.user.id);\n"
           "Ops | where Id == 'a2' | project-reorder Missing")
    rows = run(source, kql)
    assert [list(row) for row in rows] == [["Missing", "Id", "OperationName"]]
    assert rows[0]["Missing"] == ""


def test_project_reorder_with_a_sort_order_stays_refused(source):
    with pytest.raises(LogQueryError, match="ProjectReorder"):
        run(source, "print b = 1, a2 = 2, a1 = 3 | project-reorder a* asc")


def test_strings_and_comments_are_never_rewritten():
    kql = ("AuditLogs // makeset(x) and split(a, b, 1)\n"
           "| where OperationName == \"makeset(x)\" or Result == 'TargetResources.[0]'\n"
           "| extend v = @'ipv4_is_private(\"1\")', m = ```split(a, \"_\", 2)```")
    assert rewrite(kql) == kql


def test_member_names_that_look_like_functions_stay():
    assert rewrite("T | extend x = d.makeset(1)") == "T | extend x = d.makeset(1)"


def test_rewrites_nest():
    assert rewrite("print x = split(tostring(makeset(split(s, '.', 0))), ',', 2)") == (
        "print x = array_slice(split(tostring(make_set(array_slice(split(s, '.'), 0, 0))), ','), 2, 2)")


def test_split_with_a_computed_or_negative_index_stays_as_it_is():
    assert rewrite("print split('a_b', '_', n)") == "print split('a_b', '_', n)"
    assert rewrite("print split('a_b', '_', -1)") == "print split('a_b', '_', -1)"


def test_an_unterminated_string_names_its_position():
    with pytest.raises(KqlLexError, match="line 2, column 14"):
        tokenize("T\n| where x == 'open")


def test_still_unsupported_constructs_are_refused(source):
    for kql in ("AuditLogs | mv-apply t = TargetResources on (summarize n = count())",
                "AuditLogs | summarize make_bag(bag_pack(Id, OperationName))",
                "print set_difference(dynamic([1, 2]), dynamic([2]))"):
        with pytest.raises(LogQueryError, match="unsupported KQL construct"):
            run(source, kql)


def test_project_reorder_in_a_windowed_query(source):
    header = "let WindowStart = datetime({}); let WindowEnd = datetime(2026-03-11T12:00:00Z);\n"
    body = "AuditLogs | where TimeGenerated >= WindowStart | project Id, OperationName | project-reorder OperationName"
    early = run(source, header.format("2026-03-11T09:30:00Z") + body)
    late = run(source, header.format("2026-03-11T10:30:00Z") + body)
    assert sorted(early, key=lambda row: row["Id"]) == [{"OperationName": "Add owner", "Id": "a1"},
                                                        {"OperationName": "Add member", "Id": "a2"}]
    assert [list(row) for row in early] == [["OperationName", "Id"]] * 2
    assert late == [{"OperationName": "Add owner", "Id": "a1"}]


TARGETS = """datatable(Id: string, Targets: dynamic) [
  "a", dynamic([{"type": "User", "id": "u1"}, {"type": "Application", "id": "app1"},
                {"type": "Application", "id": "app2"}]),
  "b", dynamic([]),
  "c", dynamic(null),
  "d", dynamic([{"type": "User", "id": "u2"}])]
"""


def test_mv_apply_with_a_row_wise_sub_query_is_mv_expand(source):
    # learn.microsoft.com/kusto/query/mv-apply-operator: each record is expanded with mv-expand into a sub-table
    # and the sub-query runs on it; a named item keeps the array column (Microsoft's parser agrees)
    rows = run(source, TARGETS + "| mv-apply t = Targets on (where t.type =~ 'Application' "
                                 "| extend TargetId = tostring(t.id)) | order by TargetId asc | project-away Targets")
    assert rows == [{"Id": "a", "t": {"type": "Application", "id": "app1"}, "TargetId": "app1"},
                    {"Id": "a", "t": {"type": "Application", "id": "app2"}, "TargetId": "app2"}]
    assert "Targets" in run(source, TARGETS + "| mv-apply t = Targets on (where isnotnull(t))")[0]


def test_mv_apply_over_null_and_empty_arrays_follows_mv_expand(source):
    rows = run(source, TARGETS + "| mv-apply t = Targets on (where isnull(t) | extend Missing = true)")
    assert rows == [{"Id": "c", "Targets": None, "t": None, "Missing": True}]


def test_mv_apply_in_a_let_and_a_join_sub_query(source):
    kql = (TARGETS.replace("datatable", "let Apps = datatable", 1).rstrip() + "\n| mv-apply t = Targets on "
           "(where t.type == 'User' | extend UserId = tostring(t.id));\n"
           "Apps | join kind=inner (Apps | mv-apply x = pack_array(UserId) on (extend Again = tostring(x))) on Id "
           "| project Id, UserId, Again")
    assert sorted(run(source, kql), key=lambda row: row["Id"]) == [{"Id": "a", "UserId": "u1", "Again": "u1"},
                                                                  {"Id": "d", "UserId": "u2", "Again": "u2"}]


def test_mv_apply_stays_refused_when_its_meaning_is_not_row_by_row(source):
    for sub_query in ("summarize n = count()", "top 1 by tostring(t.id)", "extend tostring(t.id)"):
        with pytest.raises(LogQueryError, match="unsupported KQL construct 'MvapplyOperator'"):
            run(source, TARGETS + f"| mv-apply t = Targets on ({sub_query})")
    with pytest.raises(LogQueryError, match="unsupported KQL construct 'MvapplyOperator'"):
        run(source, TARGETS + "| mv-apply with_itemindex = i t = Targets on (where isnotnull(t))")


def test_mv_apply_onto_an_existing_column_replaces_it_as_mv_expand_does(source):
    rows = run(source, TARGETS + "| mv-apply Id = Targets on (where tostring(Id.type) == 'User') | project Id")
    assert rows == [{"Id": {"type": "User", "id": "u1"}}, {"Id": {"type": "User", "id": "u2"}}]
    with pytest.raises(LogQueryError, match="unsupported KQL construct 'MvapplyOperator'"):
        run(source, TARGETS + "| mv-apply t = Targets to typeof(string) on (where isnotempty(t))")


def test_many_constructs_all_get_rewritten():
    kql = "print " + ", ".join(f"c{i} = split('a_b', '_', 1)" for i in range(150))
    assert rewrite(kql).count("array_slice(split('a_b', '_'), 1, 1)") == 150


def test_mv_expand_of_a_path_names_the_column_after_the_path(source):
    # Microsoft's Kusto parser names `mv-expand TargetResources[0].modifiedProperties` TargetResources_0_
    # modifiedProperties and keeps TargetResources: the same columns as naming it so; a record without the path
    # (a2) expands its null into one row, as a named path does
    rows = run(source, "AuditLogs | mv-expand TargetResources[0].modifiedProperties "
                       "| project Id, TargetResources_0_modifiedProperties, Kept = isnotnull(TargetResources)")
    assert sorted(rows, key=lambda row: row["Id"]) == [
        {"Id": "a1", "TargetResources_0_modifiedProperties": {"displayName": "p1"}, "Kept": True},
        {"Id": "a2", "TargetResources_0_modifiedProperties": None, "Kept": True}]
    unnamed = run(source, TARGETS + "| mv-expand with_itemindex = i Targets[0].id, Targets[1]['type'] "
                                    "to typeof(string)")
    named = run(source, TARGETS + "| mv-expand with_itemindex = i Targets_0_id = Targets[0].id, "
                                  "Targets_1_type = Targets[1]['type'] to typeof(string)")
    assert unnamed == named and list(unnamed[0]) == ["Id", "Targets", "Targets_0_id", "Targets_1_type", "i"]
    assert [(row["Id"], row["Targets_0_id"], row["Targets_1_type"]) for row in unnamed] == [
        ("a", "u1", "Application"), ("b", None, ""), ("c", None, ""), ("d", "u2", "")]


def test_mv_expand_of_anything_but_a_path_stays_as_it_is():
    for kql in ("T | mv-expand a", "T | mv-expand p = a.b", "T | mv-expand tostring(a.b)", "T | mv-expand a[i]",
                "T | mv-expand a.b + 1"):
        assert rewrite(kql) == kql
    assert rewrite("T | mv-expand a.b to typeof(long), c limit 2") == (
        "T | mv-expand a_b = a.b to typeof(long), c limit 2")
