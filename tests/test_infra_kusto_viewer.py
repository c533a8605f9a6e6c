"""The optional Viewer role on one Azure Data Explorer database: off by default, the one database only."""

from __future__ import annotations

from infra_helpers import INFRA, MAIN, is_conditional, parse_file, unwrap


def test_the_app_gets_viewer_on_the_one_database_and_nothing_else():
    module = parse_file(INFRA / "modules" / "kusto-viewer.bicep")
    (assignment,) = [entry for entry in module["resources"].values() if not entry["existing"]]
    body = unwrap(assignment["config"])
    assert assignment["type"] == "Microsoft.Kusto/clusters/databases/principalAssignments"
    assert body["parent"] == "database"
    assert body["properties"] | {"tenantId": None} == {"principalId": "functionClientId", "principalType": "App",
                                                         "role": "Viewer", "tenantId": None}
    assert module["resources"]["database"]["type"] == "Microsoft.Kusto/clusters/databases"


def test_main_assigns_it_only_when_a_database_is_named():
    main = parse_file(MAIN)
    assert main["parameters"]["kustoDatabaseResourceId"]["default"] == ""
    assert is_conditional(main["modules"]["kustoViewer"]["config"])
    params = unwrap(main["modules"]["kustoViewer"]["config"])["params"]
    assert "identity" in str(params["functionClientId"]) and "clientId" in str(params["functionClientId"])
