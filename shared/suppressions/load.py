"""Load a folder of suppression files at start-up: every problem named by file and field, all at once
(the catalog's reader, shared/catalog/rule_files.py), detections resolved by the one name resolver."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

from shared.catalog.rule_files import RuleFileError, duplicate_ids, parse_rule_file
from shared.findings import Finding, SuppressedBy
from shared.names import Named, resolve
from shared.settings import SettingsError, read_setting
from shared.suppressions.match import matches
from shared.suppressions.model import Suppression, SuppressionFile

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_FOLDER = PROJECT_ROOT / "suppressions"


class SuppressionError(RuleFileError):
    title = "suppression files are invalid"


class Suppressions:
    """The loaded suppressions; `apply` marks what the live ones match."""

    def __init__(self, suppressions: Iterable[Suppression] = ()) -> None:
        self.items = list(suppressions)

    def __iter__(self) -> Iterator[Suppression]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def matching(self, finding: Finding, now: datetime) -> Suppression | None:
        """The first live suppression (by id) that matches the finding."""
        return next((s for s in self.items if s.live(now) and finding.detection_id in s.detection_ids
                     and matches(s.match.given(), finding)), None)

    def apply(self, findings: Iterable[Finding], now: datetime) -> list[Finding]:
        """Each finding with the live suppression it matches, if any (an expired one no longer applies)."""
        marked = []
        for finding in findings:
            found = self.matching(finding, now)
            suppressed = SuppressedBy(id=found.id, reason=found.reason, owner=found.owner,
                                      until=found.until) if found else None
            marked.append(finding.model_copy(update={"suppression": suppressed}))
        return marked

    def expired(self, now: datetime) -> list[Suppression]:
        return [s for s in self.items if not s.live(now)]


def suppressions_folder(environ: Mapping[str, str] | None = None) -> Path:
    """SUPPRESSIONS_PATH, which must exist when set; else the project's suppressions/ (absent: none)."""
    configured = read_setting("SUPPRESSIONS_PATH", environ)
    if configured and not Path(configured).is_dir():
        raise SettingsError(f"setting SUPPRESSIONS_PATH: {configured} is not a folder")
    return Path(configured) if configured else DEFAULT_FOLDER


def configured_suppressions(environ: Mapping[str, str] | None = None, folder: Path | None = None) -> Suppressions:
    """The suppressions of `folder` (default: the configured one), validated against today's date."""
    from shared.catalog.loader import rule_names

    chosen = folder or suppressions_folder(environ)
    if not chosen.is_dir() or not any(chosen.glob("*.yaml")):
        return Suppressions()
    return load_suppressions(chosen, rule_names(), datetime.now(UTC).date())


def load_suppressions(folder: Path, rules: Sequence[Named], today: date) -> Suppressions:
    """Every `*.yaml` in `folder` (none, or no folder: no suppressions). `rules` are the detections and posture
    checks a suppression may name; `today` bounds `until` to at most a year ahead."""
    problems: list[str] = []
    loaded: list[tuple[Path, Suppression]] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        document = parse_rule_file(path, SuppressionFile, problems)
        if document is not None:
            suppression = _checked(path, document, rules, today, problems)
            if suppression is not None:
                loaded.append((path, suppression))
    problems.extend(duplicate_ids(loaded))
    if problems:
        raise SuppressionError(problems)
    return Suppressions(sorted((s for _, s in loaded), key=lambda s: s.id))


def _checked(path: Path, document: SuppressionFile, rules: Sequence[Named], today: date,
             problems: list[str]) -> Suppression | None:
    before = len(problems)
    latest = _a_year_after(today)
    if document.until > latest:
        problems.append(f"{path}: until: {document.until} is more than a year ahead; "
                        f"a suppression may run until {latest} at the latest")
    detection_ids = set()
    for n, name in enumerate(document.detections):
        try:
            detection_ids.add(resolve(str(name), rules, "detection").id)
        except KeyError as error:
            problems.append(f"{path}: detections.{n}: {error}")
    if len(problems) > before:
        return None
    return Suppression(id=document.id or path.stem, path=str(path), detection_ids=frozenset(detection_ids),
                       match=document.match, reason=document.reason, owner=document.owner, until=document.until)


def _a_year_after(day: date) -> date:
    try:
        return day.replace(year=day.year + 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year + 1, day=28)
