"""The audit run skips the windows its log source proves quiet, as `wiaudit detect` does, with the same findings
and checkpoints as querying every window; a quiet window counts as audited only when every window before it was."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.audit.pipeline import AuditConfig, AuditPipeline
from shared.catalog.loader import load_catalog
from shared.directory.port import SnapshotFileDirectory
from shared.logsource.base import LogQueryError
from shared.sample_tenant.generator import SAMPLE_NOW
from shared.store.tables import TableFindingStore

CATALOG = list(load_catalog())
DAY = timedelta(days=1)
FIRST_ROWS = SAMPLE_NOW - 10 * DAY  # the sample tenant's logs begin here (06:00)
NOW = FIRST_ROWS + 2 * DAY
LONG = AuditConfig(max_lookback=4 * DAY)  # two windows before the logs, two with them


class Recording:
    """Answers from `inner` and records the windows each detection was queried for; it knows quiet windows only
    when `proves_quiet` (a Log Analytics workspace does not)."""

    def __init__(self, inner, proves_quiet: bool = True, failing: tuple | None = None) -> None:
        self.inner, self.failing = inner, failing
        self.queried: list[tuple[str, tuple]] = []
        if proves_quiet:
            self.windows_with_rows = inner.windows_with_rows
            self.silent_on_empty_tables = inner.silent_on_empty_tables

    def query(self, kql, start, end):
        detection = next((d for d in CATALOG if d.query in kql), None)
        if detection is not None:
            window = (start + detection.lookback_span, end)
            self.queried.append((detection.id, window))
            if self.failing == (detection.id, window):
                raise LogQueryError("workspace answered 500 InternalServerError")
        return self.inner.query(kql, start, end)


def _run(tenant, source, store, detections=CATALOG):
    pipeline = AuditPipeline(detections, source, SnapshotFileDirectory(tenant / "directory.json"), store, [],
                             clock=lambda: NOW, config=LONG, checks=[])
    return pipeline.run(trigger="test")


def _store(finding_store, suffix: str) -> TableFindingStore:
    store = TableFindingStore(finding_store.service, prefix=f"{finding_store.prefix}{suffix}")
    store.ensure_tables()
    return store


def _everything(store) -> set[tuple]:
    findings, token = store.query_findings(limit=1000)
    assert token is None
    return {(f.id, f.occurrences, f.window_start, f.window_end, f.summary, f.severity) for f in findings}


def test_the_pipeline_skips_quiet_windows_with_the_findings_and_checkpoints_of_every_window(
        sample_tenant, sample_source, finding_store):
    skipping, every = Recording(sample_source), Recording(sample_source, proves_quiet=False)
    with_skip = _run(sample_tenant, skipping, finding_store)
    other = _store(finding_store, "all")
    without_skip = _run(sample_tenant, every, other)

    assert with_skip.run.errors == without_skip.run.errors == {}
    assert with_skip.run.windows == without_skip.run.windows
    assert len(every.queried) == sum(len(windows) for windows in without_skip.run.windows.values())
    assert len(skipping.queried) < len(every.queried)
    lookback = {detection.id: detection.lookback_span for detection in CATALOG}
    assert all(end > FIRST_ROWS - lookback[rule] for rule, (_, end) in skipping.queried)
    assert {rule for rule, (_, end) in every.queried if end <= FIRST_ROWS - lookback[rule]}  # the skipped ones

    assert _everything(finding_store) == _everything(other) != set()
    for detection in CATALOG:
        assert finding_store.get_checkpoint(detection.id) == other.get_checkpoint(detection.id) == \
            NOW.replace(hour=0)


@pytest.mark.parametrize("proves_quiet", [True, False], ids=["quiet windows skipped", "every window queried"])
def test_the_checkpoint_passes_quiet_windows_only_up_to_a_failed_one(sample_tenant, sample_source, finding_store,
                                                                    proves_quiet):
    rule = next(d for d in CATALOG if d.name == "Service principal sign-in failures")
    first_busy = (FIRST_ROWS.replace(hour=0), FIRST_ROWS.replace(hour=0) + DAY)
    source = Recording(sample_source, proves_quiet=proves_quiet, failing=(rule.id, first_busy))
    store = _store(finding_store, "q" if proves_quiet else "e")
    outcome = _run(sample_tenant, source, store, detections=[rule])

    assert "answered 500" in outcome.run.errors[rule.id]
    assert source.queried[-1] == (rule.id, first_busy)
    before = [window for window in outcome.run.windows[rule.id] if window[1] <= first_busy[0]]
    assert len(before) == 2
    assert len(source.queried) == (1 if proves_quiet else len(before) + 1)
    assert store.get_checkpoint(rule.id) == first_busy[0]


def test_a_source_that_cannot_prove_a_window_quiet_has_every_window_queried(sample_tenant, sample_source,
                                                                           finding_store):
    rule = next(d for d in CATALOG if d.name == "Service principal sign-in failures")
    source = Recording(sample_source)

    def fails(kql, ranges):
        raise LogQueryError("the statement failed")

    source.windows_with_rows = fails
    outcome = _run(sample_tenant, source, _store(finding_store, "f"), detections=[rule])
    assert outcome.run.errors == {}
    assert [window for _, window in source.queried] == outcome.run.windows[rule.id]
