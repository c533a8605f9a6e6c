"""Parameters whose default comes from the tier model (`defaultFrom`): the tier-0 permissions and roles."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared.catalog.loader import load_catalog
from shared.catalog.model import Parameter
from shared.catalog.render import default_value, parameter_lets, render
from shared.directory.tiers.lookup import tier_model


def test_application_permissions_are_the_tier0_ones():
    parameter = Parameter(type="dynamic", defaultFrom="applicationPermissions", description="d")
    assert default_value(parameter) == tier_model().tier0_permissions()
    assert "RoleManagement.ReadWrite.Directory" in default_value(parameter)


def test_directory_roles_resolve_to_role_display_names():
    parameter = Parameter(type="dynamic", defaultFrom="directoryRoles", description="d")
    names = default_value(parameter)
    assert "Global Administrator" in names and "Privileged Role Administrator" in names
    assert not any(name.count("-") == 4 for name in names)  # names, not template ids


def test_a_plain_default_is_unchanged():
    assert default_value(Parameter(type="int", default=5, description="d")) == 5
    assert default_value(Parameter(type="dynamic", default=[], description="d")) == []


@pytest.mark.parametrize("fields", [
    {"type": "dynamic", "description": "d"},
    {"type": "dynamic", "default": ["x"], "defaultFrom": "directoryRoles", "description": "d"},
    {"type": "dynamic", "default": None, "defaultFrom": "directoryRoles", "description": "d"},
])
def test_exactly_one_of_default_and_default_from(fields):
    with pytest.raises(ValidationError, match="exactly one of default and defaultFrom"):
        Parameter(**fields)


def test_default_from_needs_a_dynamic_parameter_and_a_known_source():
    with pytest.raises(ValidationError, match="must be dynamic"):
        Parameter(type="string", defaultFrom="directoryRoles", description="d")
    with pytest.raises(ValidationError):
        Parameter(type="dynamic", defaultFrom="delegatedPermissions", description="d")


def test_the_rendered_query_declares_the_list_and_an_override_wins():
    detection = load_catalog().get("privileged_permission_granted_to_service_principal")
    start, end = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)
    assert 'let PrivilegedPermissions = dynamic([' in render(detection, start, end)
    assert '"AppRoleAssignment.ReadWrite.All"' in parameter_lets(detection)
    assert parameter_lets(detection, {"PrivilegedPermissions": ["Calendars.ReadWrite"]}) == \
        'let PrivilegedPermissions = dynamic(["Calendars.ReadWrite"]);'


def test_the_rule_lists_follow_the_tier_model():
    """Directory Writers and Application.ReadWrite.OwnedBy are tier 0 there; Mail.Send is tier 1, so the
    permission-grant rule no longer fires on it unless a tenant adds it."""
    detection = load_catalog().get("privileged_permission_granted_to_service_principal")
    permissions = Parameter(type="dynamic", defaultFrom="applicationPermissions", description="d")
    roles = Parameter(type="dynamic", defaultFrom="directoryRoles", description="d")
    assert "Application.ReadWrite.OwnedBy" in default_value(permissions)
    assert "Mail.Send" not in default_value(permissions) and "Mail.Send" not in parameter_lets(detection)
    assert "Directory Writers" in default_value(roles) and "Directory Readers" not in default_value(roles)
