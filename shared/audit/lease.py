"""The single-audit lease: taken before a run starts, renewed while it works, always given back.

The lease runs on the wall clock even when the audit itself runs on a fixed clock (the demo, tests): its
expiry is what lets the next run take over from one that was killed, and a fixed clock would never let it.

A delivery of findings' changes outside an audit (a triage's, shared/export/deliver.py) holds the same lease for as
long as it sends, under an owner starting with DELIVERY_OWNER. An audit that finds such a holder waits for it (at
most until its lease expires) instead of being refused: a triage must never cost a scheduled audit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from shared.text import moment

LEASE = "audit"
RENEW_FRACTION = 4  # renew once a quarter of the lease has passed, so a slow step has three quarters in hand
DELIVERY_OWNER = "delivery-"
DELIVERY_POLL_SECONDS = 1.0


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
                 clock: Callable[[], datetime] = wall_clock, sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self.owner = owner
        self.duration = duration
        self.clock = clock
        self.sleep = sleep
        self._renewed: datetime | None = None

    def acquire(self) -> None:
        """Take the lease, waiting out a delivery that holds it; AuditAlreadyRunning if another audit does."""
        now = self.clock()
        while not self.store.acquire_lease(LEASE, self.owner, self.duration, now):
            holder = self.store.lease_holder(LEASE)
            if holder is not None and not (holder[0].startswith(DELIVERY_OWNER) and holder[1] > now):
                raise AuditAlreadyRunning(f"another audit run holds the lease until {moment(holder[1])}; this run "
                                          "did nothing")
            self.sleep(DELIVERY_POLL_SECONDS)  # a delivery sends for seconds; or the holder just let go
            now = self.clock()
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
