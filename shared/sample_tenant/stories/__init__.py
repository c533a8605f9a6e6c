"""Injected stories: each plants in the sample tenant what one or more detections must find.

A story names the detections (by file name in shared/detections) and the principal they are
about, so the demo and the tests can check that exactly these are found. Stories live in
themed modules; each exports STORIES and the STORY_WORKLOADS it acts on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.directory.model import RoleAssignment
from shared.sample_tenant.behaviour import Activity
from shared.sample_tenant.identities import IdentityFactory, Workload

ATTACKER_IP = "185.220.101.47"


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    story: str
    detections: tuple[str, ...]  # file stems in shared/detections
    principal_id: str
    principal_name: str
    when: datetime


@dataclass
class StoryContext:
    factory: IdentityFactory
    activity: Activity
    workloads: dict[str, Workload]
    now: datetime
    role_assignments: list[RoleAssignment] = field(default_factory=list)  # the snapshot's, shared by all stories

    def never_signs_in(self, quiet: Workload) -> None:
        """Leave `quiet` out of the everyday activity: it no longer signs in here."""
        everyday = self.activity.day

        def without(workload: Workload, day_start: datetime) -> None:
            if workload is not quiet:
                everyday(workload, day_start)

        self.activity.day = without  # type: ignore[method-assign]

    def at(self, days_ago: int, hour: int, minute: int = 0) -> datetime:
        midnight = self.now.replace(hour=0, minute=0, second=0, microsecond=0)
        return midnight - timedelta(days=days_ago) + timedelta(hours=hour, minutes=minute)


Story = Callable[[StoryContext], Scenario]


def all_stories() -> tuple[list[Story], list[tuple[str, str, bool]]]:
    """Every story and every workload they act on: (kind, name, certificate?)."""
    from shared.sample_tenant.stories import (
        app_hygiene,
        azure_roles,
        consent_and_credentials,
        control_paths,
        credential_hygiene,
        federation,
        first_week,
        graph_activity,
        logic_apps,
        microsoft_verdicts,
        signin_behaviour,
    )

    modules = (first_week, signin_behaviour, consent_and_credentials, credential_hygiene, logic_apps, federation,
               app_hygiene, graph_activity, azure_roles, microsoft_verdicts, control_paths)
    return ([story for module in modules for story in module.STORIES],
            [workload for module in modules for workload in module.STORY_WORKLOADS])
