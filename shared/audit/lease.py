"""The single-audit lease: taken before a run starts, renewed while it works, always given back.

The lease runs on the wall clock even when the audit itself runs on a fixed clock (the demo, tests): its
expiry is what lets the next run take over from one that was killed, and a fixed clock would never let it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared.text import moment

LEASE = "audit"
RENEW_FRACTION = 4  # renew once a quarter of the lease has passed, so a slow step has three quarters in hand


class AuditAlreadyRunning(RuntimeError):
    """Another audit holds the lease; this one did nothing."""


class LeaseLost(RuntimeError):
    """Another run took the lease over (this one stalled past its expiry); this run must stop writing."""


class LeaseStore(Protocol):
    def acquire_lease(self, name: str, owner: str, duration: timedelta, now: datetime) -> bool: ...

    def release_lease(self, name: str, owner: str) -> bool: ...

    def lease_holder(self, name: str) -> tuple[str, datetime] | None: ...


def wall_clock() -> datetime:
    return datetime.now(UTC)


class AuditLease:
    def __init__(self, store: LeaseStore, owner: str, duration: timedelta,
                 clock: Callable[[], datetime] = wall_clock) -> None:
        self.store = store
        self.owner = owner
        self.duration = duration
        self.clock = clock
        self._renewed: datetime | None = None

    def acquire(self) -> None:
        now = self.clock()
        if not self.store.acquire_lease(LEASE, self.owner, self.duration, now):
            holder = self.store.lease_holder(LEASE)
            until = f" until {moment(holder[1])}" if holder else ""
            raise AuditAlreadyRunning(f"another audit run holds the lease{until}; this run did nothing")
        self._renewed = now

    def renew(self) -> bool:
        """Extend the lease if a quarter of it has passed; True when it did. LeaseLost if another run holds it."""
        now = self.clock()
        if self._renewed is not None and now - self._renewed < self.duration / RENEW_FRACTION:
            return False
        if not self.store.acquire_lease(LEASE, self.owner, self.duration, now):
            raise LeaseLost(f"run {self.owner} lost the audit lease to another run (it stalled past its expiry)")
        self._renewed = now
        return True

    def release(self) -> None:
        self.store.release_lease(LEASE, self.owner)
