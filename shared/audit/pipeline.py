"""One audit run, the same in Azure, in the CLI and in tests:
plan -> detect -> inventory -> enrich -> persist -> notify.

A window the log source proves quiet (no row in its tables from its lookback start to its end, and a query silent
over empty tables: see shared/detect.py windows_to_query) is audited without running its query.

After the directory is read, the posture checks (shared/posture) judge its credentials with the
sign-in logs, once per audit day not yet judged; their findings are stored like the detections'.

A failing detection, a failing directory read or a failing notification is recorded in the run
and the rest goes on; the run is then `partial`. A checkpoint only moves past windows whose
findings are stored (or that were proven quiet, every window before them audited), and a
digest's findings stay pending for a channel until it accepts them.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.audit.lease import AuditLease, LeaseLost, wall_clock
from shared.audit.plan import plan_windows, skipped_windows
from shared.catalog.model import Detection
from shared.coverage import AUDIT_RULES, coverage_line
from shared.detect import run_detection, windows_to_query
from shared.directory.context import DirectoryIndex, apply_privileged_severity, enrich
from shared.directory.port import Directory
from shared.findings import Finding
from shared.logsource.base import IncompleteResult, LogQueryError, LogSource
from shared.logsource.coverage import Requirement, detection_requirement, measure_coverage, posture_requirement
from shared.notices.digest import unowned_section
from shared.notices.plan import Unnotified
from shared.notices.run import OwnerNotices
from shared.notify.changes import TREND_RUNS, TrendPoint, digest_changes, open_counts, open_ids
from shared.notify.coverage_section import coverage_sections
from shared.notify.port import DeliveryUncertain, Digest, DigestSection, NotificationError, Notifier
from shared.notify.uncertain import uncertain_section
from shared.posture.catalog import PostureCheck, load_checks
from shared.posture.hygiene import CredentialHygiene, credential_hygiene
from shared.posture.model import CredentialRecord
from shared.posture.run import DAY, POSTURE_CHECKPOINT, audit_days, run_posture
from shared.store.model import DigestBaseline, FindingState, PendingDelivery, RunRecord
from shared.store.tables import TableFindingStore
from shared.suppressions.digest import expired_section
from shared.suppressions.load import Suppressions
from shared.text import duration, join_list, moment, plural

if TYPE_CHECKING:
    from shared.export.ingestion import LogsIngestionSink

SKIPPED = "skipped:"  # run.errors key prefix: windows of a detection that MAX_LOOKBACK_DAYS left unaudited

INTERRUPTED = ("the audit stopped after it began sending the digest and before it recorded whether the channel "
               "took it, and neither a Teams webhook nor Graph sendMail can be asked whether a message arrived")


@dataclass(frozen=True)
class AuditConfig:
    ingestion_delay: timedelta = timedelta(minutes=15)
    max_lookback: timedelta = timedelta(days=7)
    lease_duration: timedelta = timedelta(hours=1)
    min_window: timedelta = timedelta(hours=1)  # the shortest half window an over-limit result is split into
    parameters: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # detection id -> overrides
    public_base_url: str | None = None  # PUBLIC_BASE_URL: the digest links to findings in the API when set
    disabled: Mapping[str, str] = field(default_factory=dict)  # DISABLED_DETECTIONS: rule id -> name, not run


@dataclass
class AuditOutcome:
    run: RunRecord
    new_findings: list[str] = field(default_factory=list)
    notified: dict[str, int] = field(default_factory=dict)  # channel -> findings delivered
    inventory: list[CredentialRecord] | None = None  # the credential inventory, as of inventory_taken_at
    inventory_taken_at: datetime | None = None
    noticed: dict[str, int] = field(default_factory=dict)  # owner notices sent: recipient -> items told


@dataclass
class _Detected:
    detection: Detection
    findings: list[Finding]
    completed_until: datetime | None  # end of the last window that ran


class AuditPipeline:
    def __init__(self, detections: Sequence[Detection], source: LogSource, directory: Directory,
                 store: TableFindingStore, notifiers: Sequence[Notifier], clock: Callable[[], datetime],
                 config: AuditConfig = AuditConfig(), progress: Callable[[str], None] = lambda message: None,
                 checks: Sequence[PostureCheck] | None = None, suppressions: Suppressions | None = None,
                 lease_clock: Callable[[], datetime] = wall_clock, notices: OwnerNotices | None = None,
                 export: LogsIngestionSink | None = None) -> None:
        self.detections = [detection for detection in detections if detection.id not in config.disabled]
        self.source = source
        self.directory = directory
        self.store = store
        self.notifiers = notifiers
        self.clock = clock
        self.config = config
        self.progress = progress
        self.checks = checks  # posture checks; None: those in shared/posture/checks/
        self.lease_clock = lease_clock  # the wall clock, even when `clock` is fixed (see shared/audit/lease.py)
        self._lease: AuditLease | None = None
        self.suppressions = suppressions or Suppressions()
        self.notices = notices  # owner notices; None: off
        self.export = export  # findings and their changes into Log Analytics; None: off

    def run(self, trigger: str = "timer") -> AuditOutcome:
        """One audit. AuditAlreadyRunning (nothing done) if another run holds the lease. Once the lease is taken
        the run always closes: its record is saved with how it ended and the lease is released, and an error
        while closing never hides the error that ended the run."""
        now = self.clock()
        run = RunRecord(id=f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}", started=now, trigger=trigger)
        self._lease = AuditLease(self.store, run.id, self.config.lease_duration, self.lease_clock)
        self._lease.acquire()
        outcome = AuditOutcome(run)
        failure: BaseException | None = None
        try:
            self.store.abandon_runs(found_by=run.id)
            self.store.start_run(run)
            detected = [self._detect(detection, run, now) for detection in self.detections]
            self._coverage(run, now)
            index = self._inventory(run)
            if index is not None:
                self._enrich_late(index, run)
            for item in detected:
                self._keep_lease(run)
                outcome.new_findings += self._persist(item, index, run, now)
            if index is not None:
                outcome.new_findings += self._posture(index, run, now, outcome)
            hygiene = self._store_credentials(outcome, run)
            unowned = self._owner_notices(outcome, run)
            states = self.store.finding_states()
            run.open_findings = open_counts(states)
            outcome.notified = self._notify(run, now, states, hygiene, unowned)
            self._export(run)
            run.status = "partial" if run.errors else "succeeded"
        except BaseException as error:
            failure = error
            run.status, run.errors["run"] = "failed", f"{type(error).__name__}: {error}"
            raise
        finally:
            self._close(run, failure)
        return outcome

    def _close(self, run: RunRecord, failure: BaseException | None) -> None:
        """Save how the run ended and give the lease back, both always attempted; if either fails, the run's own
        failure (if any) is what propagates, with the closing error noted on it."""
        run.ended = self.clock()
        problems: list[Exception] = []
        for step in (lambda: self.store.finish_run(run), self._lease.release):
            try:
                step()
            except Exception as error:
                problems.append(error)
        if not problems:
            return
        carrier = failure or problems[0]
        for problem in problems:
            if problem is not carrier:
                carrier.add_note(f"closing run {run.id} also failed: {type(problem).__name__}: {problem}")
        if failure is None:
            raise carrier

    def _keep_lease(self, run: RunRecord) -> None:
        """Renew the lease as the run goes (LeaseLost if another run took it over); each renewal also saves the
        run record, so a run killed later is found `abandoned` with what it knew by then."""
        if self._lease.renew():
            self.store.update_run(run)

    def _detect(self, detection: Detection, run: RunRecord, now: datetime) -> _Detected:
        checkpoint = self.store.get_checkpoint(detection.id)
        windows = plan_windows(detection.frequency, checkpoint, now, self.config.ingestion_delay,
                               self.config.max_lookback)
        run.windows[detection.id] = windows
        if skipped := skipped_windows(detection.frequency, checkpoint, windows):
            run.errors[SKIPPED + detection.id] = (
                f"{plural(len(skipped), 'window')} from {moment(skipped[0][0])} to {moment(skipped[-1][1])} not "
                f"audited: the last run was longer ago than MAX_LOOKBACK_DAYS ({duration(self.config.max_lookback)})")
        self.progress(f"{detection.name}: {plural(len(windows), 'window')}")
        self._keep_lease(run)
        busy = set(windows_to_query(detection, self.source, windows, self.config.parameters.get(detection.id)))
        detected = _Detected(detection, [], None)
        for start, end in windows:
            if (start, end) in busy:
                try:
                    detected.findings += self._run_window(detection, start, end, run)
                except LogQueryError as error:
                    run.errors[detection.id] = f"window {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M}: {error}"
                    break
            detected.completed_until = end
        return detected

    def _coverage(self, run: RunRecord, now: datetime) -> None:
        """What the logs held in the windows this run audits, so a rule without data reads "not evaluated", never
        "0 findings". A source that cannot say is an error of the run; the audit goes on."""
        requirements = [detection_requirement(detection, run.windows.get(detection.id, []))
                        for detection in self.detections]
        requirements += self._posture_requirements(now)
        try:
            run.coverage = measure_coverage(self.source, requirements, each_query=lambda: self._keep_lease(run))
        except LogQueryError as error:
            run.errors["coverage"] = str(error)
            return
        if run.coverage is not None:
            run.coverage.disabled = list(self.config.disabled.values())
            self.progress(coverage_line(run.coverage, AUDIT_RULES))

    def _posture_requirements(self, now: datetime) -> list[Requirement]:
        days = audit_days(self.store.get_checkpoint(POSTURE_CHECKPOINT), now, self.config.ingestion_delay,
                          self.config.max_lookback)
        try:
            checks = self._posture_checks()
        except Exception:  # a broken check file: the posture step records why
            return []
        windows = [(end - DAY, end) for end in days]
        return [posture_requirement(check, windows) for check in checks]

    def _posture_checks(self) -> list[PostureCheck]:
        checks = load_checks() if self.checks is None else self.checks
        return [check for check in checks if check.id not in self.config.disabled]

    def _run_window(self, detection: Detection, start: datetime, end: datetime, run: RunRecord) -> list[Finding]:
        """The window's findings; a result the service cut at its limit is retried as two half windows, down to
        `min_window`. Each half is a whole detection window of its own, so no row is lost or counted twice.
        The lease is renewed before each query."""
        self._keep_lease(run)
        try:
            return run_detection(detection, self.source, start, end, self.config.parameters.get(detection.id))
        except IncompleteResult:
            middle = start + (end - start) / 2
            if middle - start < self.config.min_window:
                raise
            return self._run_window(detection, start, middle, run) + self._run_window(detection, middle, end, run)

    def _inventory(self, run: RunRecord) -> DirectoryIndex | None:
        self.progress("reading the directory")
        try:
            return DirectoryIndex(self.directory.inventory())
        except Exception as error:  # any adapter failure: findings are still stored, without context
            run.errors["inventory"] = f"{type(error).__name__}: {error}"
            return None

    def _enrich_late(self, index: DirectoryIndex, run: RunRecord) -> None:
        """Give the findings stored while the directory could not be read their context, and the privileged
        severity it calls for; one that keeps changing, or a store error, waits for the next run."""
        detections = {detection.id: detection for detection in self.detections}
        try:
            for finding_id in self.store.unenriched():
                self.store.enrich_stored(finding_id, lambda finding: apply_privileged_severity(
                    detections.get(finding.detection_id), enrich([finding], index))[0])
        except Exception as error:  # the store: the markers stay for the next run
            run.errors["enrichment"] = f"{type(error).__name__}: {error}"

    def _persist(self, detected: _Detected, index: DirectoryIndex | None, run: RunRecord, now: datetime) -> list[str]:
        if index is None:
            self.store.mark_unenriched(finding.id for finding in detected.findings)
        findings = enrich(detected.findings, index) if index else detected.findings
        findings = self.suppressions.apply(apply_privileged_severity(detected.detection, findings), now)
        result = self.store.upsert_findings(findings, run.id, now)
        run.counts[detected.detection.id] = {"findings": len({f.id for f in findings}), "new": len(result.new),
                                             "suppressed": len({f.id for f in findings if f.suppression})}
        if result.conflicted:
            run.errors[detected.detection.id] = _not_stored(result.conflicted)
        elif detected.completed_until is not None:
            self.store.set_checkpoint(detected.detection.id, detected.completed_until)
        return result.new

    def _posture(self, index: DirectoryIndex, run: RunRecord, now: datetime, outcome: AuditOutcome) -> list[str]:
        """Each audit day since the posture checkpoint, judged as of its end; a failure is recorded, the run goes on."""
        days = audit_days(self.store.get_checkpoint(POSTURE_CHECKPOINT), now, self.config.ingestion_delay,
                          self.config.max_lookback)
        self.progress(f"posture checks: {plural(len(days), 'day')}")
        findings: list[Finding] = []
        try:
            checks = self._posture_checks()
            for day_end in days:
                self._keep_lease(run)
                result = run_posture(checks, index.snapshot, self.source, day_end, self.config.parameters)
                findings += result.findings
                run.errors.update(result.errors)
        except Exception as error:  # the sign-in logs or a check file: no posture this run
            run.errors["posture"] = f"{type(error).__name__}: {error}"
            return []
        outcome.inventory, outcome.inventory_taken_at = result.inventory, days[-1]
        findings = self.suppressions.apply(enrich(findings, index), now)
        stored = self.store.upsert_findings(findings, run.id, now)
        for check in checks:
            ids = {finding.id for finding in findings if finding.detection_id == check.id}
            run.counts[check.id] = {"findings": len(ids), "new": len(ids.intersection(stored.new)),
                                    "suppressed": len({f.id for f in findings if f.id in ids and f.suppression})}
        if stored.conflicted:
            run.errors["posture"] = _not_stored(stored.conflicted)
        else:
            self.store.set_checkpoint(POSTURE_CHECKPOINT, days[-1])
        return stored.new

    def _store_credentials(self, outcome: AuditOutcome, run: RunRecord) -> CredentialHygiene | None:
        """Keep the inventory for `wiaudit credentials` and GET /api/credentials; its hygiene goes in the digest."""
        if outcome.inventory is None or outcome.inventory_taken_at is None:
            return None
        try:
            self.store.replace_inventory(outcome.inventory, outcome.inventory_taken_at)
        except Exception as error:  # the previous inventory stays readable; the run is partial
            run.errors["credentials"] = f"{type(error).__name__}: {error}"
        return credential_hygiene(outcome.inventory, outcome.inventory_taken_at)

    def _trend(self, run: RunRecord) -> list[TrendPoint]:
        """Open findings at the end of this run and of the previous runs that counted them, newest first."""
        runs, _ = self.store.list_runs(limit=TREND_RUNS + 1)
        points = [TrendPoint(run_id=run.id, at=run.started, open=run.open_findings or {})]
        points += [TrendPoint(run_id=past.id, at=past.started, open=past.open_findings)
                   for past in runs if past.id != run.id and past.open_findings is not None]
        return points[:TREND_RUNS]

    def _owner_notices(self, outcome: AuditOutcome, run: RunRecord) -> list[Unnotified]:
        """Tell owners about their credentials (when notices are on and an inventory was taken); returns the
        applications nobody could be told about, for the digest. The lease is renewed before each email (a run
        that lost it stops); any other failure is recorded and the run goes on."""
        if self.notices is None or outcome.inventory is None or outcome.inventory_taken_at is None:
            return []
        self.progress("owner notices")
        try:
            result = self.notices.send(self.store, outcome.inventory, outcome.inventory_taken_at, run.id,
                                       keep_lease=lambda: self._keep_lease(run))
        except LeaseLost:
            raise
        except Exception as error:  # the store or a renderer: no notices this run, they stay due
            run.errors["notices"] = f"{type(error).__name__}: {error}"
            return []
        run.errors.update(result.errors)
        outcome.noticed = result.sent
        return result.unowned

    def _export(self, run: RunRecord) -> None:
        """Send the changes Log Analytics has not accepted yet (this run's and any a failed delivery left)."""
        if self.export is None:
            return
        from shared.export.deliver import deliver_changes

        try:
            report = deliver_changes(self.store, self.export)
        except Exception as error:  # a failed delivery leaves the changes pending; the audit itself stands
            run.errors["findings export"] = f"{type(error).__name__}: {error}"
            return
        self.progress(f"{plural(report.sent, 'finding change')} sent to Log Analytics")
        if report.pending:
            run.errors["findings export"] = (f"{plural(report.pending, 'finding change')} not accepted by Log "
                                             f"Analytics, kept for the next run: {report.reason}")

    def _notify(self, run: RunRecord, now: datetime, states: dict[str, FindingState],
                hygiene: CredentialHygiene | None = None, unowned: Sequence[Unnotified] = ()) -> dict[str, int]:
        """Each channel's digest, recorded before it is sent (see shared/store/outbox.py), so a run that stops
        between sending and bookkeeping, or a channel that answers too late, never makes a digest go out twice."""
        delivered = {}
        trend = self._trend(run) if self.notifiers else []
        sections = [section for section in (expired_section(self.suppressions, now),) if section]
        for notifier in self.notifiers:
            self._keep_lease(run)
            channel = notifier.channel
            uncertain = self.store.settle_deliveries(channel, INTERRUPTED)
            pending = self.store.pending_notifications(channel)
            if not pending and not uncertain:
                continue
            self.progress(f"sending {plural(len(pending), 'finding')} to {channel}")
            # a reopened finding was first stored long ago
            since = min((finding.last_detected for finding in pending), default=now)
            digest = Digest(generated_at=now, run_id=run.id, findings=pending,
                            findings_query=f"/api/findings?since={since:%Y-%m-%dT%H:%M:%SZ}", hygiene=hygiene,
                            changes=digest_changes(states, pending, self.store.last_digest(channel)),
                            trend=trend, base_url=self.config.public_base_url,
                            sections=[*uncertain_section(uncertain),
                                      *skipped_section(run, {d.id: d.name for d in self.detections}), *sections,
                                      *unowned_section(unowned), *coverage_sections(run.coverage, AUDIT_RULES)])
            delivery = PendingDelivery(id=run.id, attempted_at=now, findings=len(pending),
                                       reports=[earlier.id for earlier in uncertain])
            self.store.begin_delivery(channel, delivery, [finding.id for finding in pending])
            try:
                notifier.send(digest)
            except DeliveryUncertain as error:
                self.store.uncertain(channel, delivery, str(error))
                run.errors[f"notify:{channel}"] = str(error)
                continue
            except NotificationError as error:
                self.store.failed(channel, delivery)
                run.errors[f"notify:{channel}"] = str(error)
                continue
            self.store.delivered(channel, delivery)
            self.store.record_digest(channel, DigestBaseline(at=now, run_id=run.id, open_ids=open_ids(states)))
            delivered[channel] = len(pending)
        return delivered


def skipped_section(run: RunRecord, names: Mapping[str, str]) -> list[DigestSection]:
    """The digest's note of the windows this run left unaudited (MAX_LOOKBACK_DAYS), if it left any."""
    lines = [f"{names.get(key.removeprefix(SKIPPED), key.removeprefix(SKIPPED))}: {message}"
             for key, message in run.errors.items() if key.startswith(SKIPPED)]
    return [DigestSection(title="Not audited", lines=lines, severity="Medium")] if lines else []


def _not_stored(conflicted: Sequence[str]) -> str:
    return (f"{plural(len(conflicted), 'finding')} kept changing while being stored (another writer) and "
            f"{'was' if len(conflicted) == 1 else 'were'} not stored: {join_list(conflicted)}; the checkpoint stays, "
            "so the next run stores them")
