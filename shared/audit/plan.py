"""Plan the windows a detection still has to run: from its checkpoint to now - ingestion delay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.windows import slices

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def floor_to(moment: datetime, frequency: timedelta) -> datetime:
    return _EPOCH + ((moment - _EPOCH) // frequency) * frequency


def plan_windows(frequency: timedelta, checkpoint: datetime | None, now: datetime, ingestion_delay: timedelta,
                 max_lookback: timedelta) -> list[tuple[datetime, datetime]]:
    """Whole windows of `frequency`, aligned to it, that end by `now - ingestion_delay`.

    A window is only run once it is complete and its logs have arrived, so a catch-up run gives
    exactly the windows the missed runs would have. Without a checkpoint, or with one older than
    `max_lookback`, the plan starts `max_lookback` back.
    """
    end = floor_to(now - ingestion_delay, frequency)
    earliest = floor_to(end - max_lookback, frequency)
    start = earliest if checkpoint is None else max(checkpoint, earliest)
    return slices(start, end, frequency)


def skipped_windows(frequency: timedelta, checkpoint: datetime | None,
                    planned: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """The windows between the checkpoint and the first planned one: what `max_lookback` left unaudited."""
    if checkpoint is None or not planned or planned[0][0] <= checkpoint:
        return []
    return slices(checkpoint, planned[0][0], frequency)
