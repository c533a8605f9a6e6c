"""Settings are read once, validated, and a bad one is named with what is expected."""

from __future__ import annotations

import pytest

from shared.settings import SettingsError, check_settings, read_setting, require_setting


def test_defaults_and_parsing():
    assert read_setting("INGESTION_DELAY_MINUTES", {}) == 15
    assert read_setting("MAX_LOOKBACK_DAYS", {"MAX_LOOKBACK_DAYS": " 3 "}) == 3
    assert read_setting("TEAMS_WEBHOOK_URL", {}) is None


def test_a_bad_value_names_the_setting_and_what_is_expected():
    with pytest.raises(SettingsError, match=r"setting MAX_LOOKBACK_DAYS: must be a positive whole number .*'0'"):
        read_setting("MAX_LOOKBACK_DAYS", {"MAX_LOOKBACK_DAYS": "0"})


def test_a_missing_required_setting_says_what_to_set():
    with pytest.raises(SettingsError, match="LOG_ANALYTICS_WORKSPACE_ID is not set; it is the Workspace"):
        require_setting("LOG_ANALYTICS_WORKSPACE_ID", {})


def test_start_up_check_lists_every_bad_setting():
    with pytest.raises(SettingsError) as caught:
        check_settings({"MAX_LOOKBACK_DAYS": "x", "INGESTION_DELAY_MINUTES": "-1"})
    assert "MAX_LOOKBACK_DAYS" in str(caught.value) and "INGESTION_DELAY_MINUTES" in str(caught.value)
    check_settings({})


def test_detection_parameters_name_detections_or_posture_checks_and_are_checked():
    from shared.audit.build import parameter_overrides
    from shared.catalog.loader import load_catalog
    from shared.posture.catalog import load_checks

    catalog, checks = load_catalog(), load_checks()
    good = {"DETECTION_PARAMETERS": '{"expiring_credentials": {"expiring_days": 45}}'}
    overrides = parameter_overrides(catalog, good, checks)
    assert overrides == {checks.get("expiring_credentials").id: {"expiring_days": 45}}
    with pytest.raises(SettingsError, match="parameter expiring_days must be int"):
        bad = {"DETECTION_PARAMETERS": '{"expiring_credentials": {"expiring_days": "x"}}'}
        parameter_overrides(catalog, bad, checks)
    with pytest.raises(SettingsError, match="unknown detection no_such_rule"):
        parameter_overrides(catalog, {"DETECTION_PARAMETERS": '{"no_such_rule": {}}'}, checks)
    with pytest.raises(SettingsError, match="workload_signin_new_network: BaselinePeriod 30d reaches further back "
                                            "than the rule's lookback 13d"):
        parameter_overrides(catalog, {"DETECTION_PARAMETERS":
                                      '{"workload_signin_new_network": {"BaselinePeriod": "30d"}}'}, checks)
    shorter = {"DETECTION_PARAMETERS": '{"workload_signin_new_network": {"BaselinePeriod": "7d"}}'}
    assert parameter_overrides(catalog, shorter, checks) == {
        catalog.get("workload_signin_new_network").id: {"BaselinePeriod": "7d"}}


def test_disabled_detections_name_detections_or_posture_checks_by_id_file_name_or_exact_name():
    from shared.audit.build import disabled_rules
    from shared.catalog.loader import load_catalog
    from shared.posture.catalog import load_checks

    catalog, checks = load_catalog(), load_checks()
    risky = catalog.get("microsoft_risky_service_principal")
    events = catalog.get("microsoft_service_principal_risk_events")
    expiring = checks.get("expiring_credentials")
    listed = {"DISABLED_DETECTIONS": f" microsoft_risky_service_principal, {events.id},, Credential expiring soon "}
    assert disabled_rules(catalog, checks, listed) == {risky.id: risky.name, events.id: events.name,
                                                      expiring.id: expiring.name}
    as_json = {"DISABLED_DETECTIONS": f'["{risky.name}", "microsoft_risky_service_principal"]'}
    assert disabled_rules(catalog, checks, as_json) == {risky.id: risky.name}
    assert disabled_rules(catalog, checks, {}) == {}


def test_an_unknown_disabled_detection_is_refused_with_its_name():
    from shared.audit.build import disabled_rules
    from shared.catalog.loader import load_catalog
    from shared.posture.catalog import load_checks

    typo = {"DISABLED_DETECTIONS": "microsoft_risky_service_principal, microsoft_risk_events, Credential expiring"}
    with pytest.raises(SettingsError) as refused:
        disabled_rules(load_catalog(), load_checks(), typo)
    assert str(refused.value) == ("setting DISABLED_DETECTIONS: no detection or posture check has the id, file name "
                                  'or exact name "microsoft_risk_events" and "Credential expiring"')
    with pytest.raises(SettingsError, match="DISABLED_DETECTIONS: must be a JSON list of strings"):
        read_setting("DISABLED_DETECTIONS", {"DISABLED_DETECTIONS": '["a", 1]'})
