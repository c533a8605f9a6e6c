"""Split a time range into detection windows aligned to the detection's query frequency."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slices(start: datetime, end: datetime, frequency: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut at every multiple of `frequency` since the epoch (midnight UTC for 1d).

    The first and last slices may be shorter; together they cover the range exactly once.
    """
    if end <= start:
        return []
    boundary = _EPOCH + ((start - _EPOCH) // frequency + 1) * frequency
    cuts = [start]
    while boundary < end:
        cuts.append(boundary)
        boundary += frequency
    cuts.append(end)
    return list(pairwise(cuts))
