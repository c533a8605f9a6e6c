"""The schema of a suppression file. Unknown keys are refused, so a typo fails instead of widening a match.

```yaml
detections: [workload_signin_new_network]   # GUID, file name or a unique prefix of either
match:                                      # every key given must match (see match.py)
  principal: build-agent                    # object id, app id or display name
  ip: [203.0.113.0/24]                      # an IP address or CIDR range, or a list of them
reason: The partner's build agents sign in from their own range
owner: alice@contoso.com
until: 2027-03-31                           # required, at most a year ahead; applies through that day (UTC)
```
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _values(value: Any) -> tuple[str, ...]:
    """One value or a list of them, as text (an ASN is a number in YAML)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueError("give at least one value")
    for item in items:
        if isinstance(item, bool) or not isinstance(item, str | int) or not str(item).strip():
            raise ValueError(f"{item!r} is not a name, id or number")
    return tuple(str(item).strip() for item in items)


def _networks(value: Any) -> tuple[str, ...]:
    texts = _values(value)
    for text in texts:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR range such as 203.0.113.0/24") from None
    return texts


Values = Annotated[tuple[str, ...] | None, BeforeValidator(lambda v: None if v is None else _values(v))]
Networks = Annotated[tuple[str, ...] | None, BeforeValidator(lambda v: None if v is None else _networks(v))]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(Strict):
    principal: Values = None
    ip: Networks = None
    asn: Values = None
    country: Values = None
    actor: Values = None
    resource: Values = None

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not self.given():
            raise ValueError("give at least one of principal, ip, asn, country, actor, resource")
        return self

    def given(self) -> dict[str, tuple[str, ...]]:
        return {name: value for name, value in self if value is not None}


class SuppressionFile(Strict):
    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$", description="Default: the file name")
    detections: list[str] = Field(min_length=1)
    match: Match
    reason: str = Field(min_length=1, max_length=1000)
    owner: str = Field(min_length=1, max_length=256)
    until: date


class Suppression(BaseModel):
    """A loaded suppression: its detections resolved to ids."""

    model_config = ConfigDict(frozen=True)

    id: str
    path: str
    detection_ids: frozenset[str]
    match: Match
    reason: str
    owner: str
    until: date

    @property
    def expires_at(self) -> datetime:
        """The moment it stops applying: the end of its `until` day, UTC."""
        return datetime.combine(self.until + timedelta(days=1), time(), tzinfo=UTC)

    def live(self, now: datetime) -> bool:
        return now < self.expires_at
