"""Load the catalog: every detection YAML validated, every problem reported at once.

A problem names the file and the field, e.g.
`shared/detections/sp_signin_failures.yaml: severity: Input should be 'Informational', ...`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from pathlib import Path

from shared.catalog.model import Detection
from shared.catalog.render import render
from shared.catalog.rule_files import RuleCatalog, RuleFileError, duplicate_ids, parse_rule_file
from shared.logsource.compiled import remember, remembered
from shared.logsource.database import LogDatabase
from shared.logsource.embedded import EmbeddedLogSource, parameterise_window
from shared.names import Named
from shared.tables import table_schemas

DETECTIONS_DIR = Path(__file__).resolve().parent.parent / "detections"
_PROBE_START = datetime(2026, 1, 1, tzinfo=UTC)
_PROBE_END = datetime(2026, 1, 2, tzinfo=UTC)


class CatalogError(RuleFileError):
    title = "detection catalog is invalid"


class Catalog(RuleCatalog[Detection]):
    kind = "detections"

    @property
    def detections(self) -> dict[str, Detection]:
        return self.rules


def load_catalog(directory: Path = DETECTIONS_DIR) -> Catalog:
    """The catalog of `directory`, loaded once per process while its files' contents stay the same (every test
    module asks for it); the engine's verdict on each query is cached on disk (shared/logsource/compiled.py)."""
    files = sorted(directory.glob("*.yaml"))
    if not files:
        raise CatalogError([f"{directory}: no detection files (*.yaml)"])
    return _load(tuple((path, path.read_bytes()) for path in files))


@cache
def _load(files: tuple[tuple[Path, bytes], ...]) -> Catalog:
    problems: list[str] = []
    loaded: list[tuple[Path, Detection]] = []
    for path, _ in files:
        detection = parse_rule_file(path, Detection, problems)
        if detection is not None:
            loaded.append((path, detection))
    problems.extend(duplicate_ids(loaded))
    probe = _Probe()
    for path, detection in loaded:
        problems.extend(f"{path}: {problem}" for problem in check_detection(detection, probe))
    if problems:
        raise CatalogError(problems)
    return Catalog(loaded)


def rule_names(directory: Path = DETECTIONS_DIR) -> list[Named]:
    """Every detection and posture check by id and file name, for the name resolver. Read without
    translating the queries, so naming a rule costs milliseconds, not a catalog load."""
    from shared.posture.catalog import load_checks

    problems: list[str] = []
    loaded = [(path, rule) for path in sorted(directory.glob("*.yaml"))
              if (rule := parse_rule_file(path, Detection, problems)) is not None]
    if problems:
        raise CatalogError(problems)
    return Catalog(loaded).named() + load_checks().named()


class _Probe:
    """An empty database of the known tables, opened only when a query's output columns are not cached."""

    def __init__(self) -> None:
        self.schema = {name: list(schema.columns) for name, schema in table_schemas().items()}
        self._database: LogDatabase | None = None

    def output_columns(self, kql: str) -> list[str]:
        text, window = parameterise_window(kql)
        columns = remembered("columns", text, self.schema)
        if columns is None:
            if self._database is None:
                self._database = LogDatabase()
            source = EmbeddedLogSource(self._database, _PROBE_END)
            columns = [column[0] for column in source.execute(text, window).description]
            remember("columns", text, self.schema, columns)
        return columns


def check_detection(detection: Detection, probe: _Probe) -> list[str]:
    """Problems a schema cannot see: unknown tables, a query the engine rejects, unmapped columns."""
    problems = _unknown_tables(detection)
    try:
        columns = probe.output_columns(render(detection, _PROBE_START, _PROBE_END))
    except Exception as error:  # the engine's parse and bind errors, reported as the rule's problem
        return [*problems, f"query: the embedded engine rejects it: {error}"]
    for e, entity in enumerate(detection.entityMappings):
        for f, field in enumerate(entity.fieldMappings):
            if field.columnName not in columns:
                problems.append(f"entityMappings.{e}.fieldMappings.{f}.columnName: {field.columnName!r} is not "
                                f"an output column of the query (it outputs {', '.join(columns)})")
    return problems


def _unknown_tables(detection: Detection) -> list[str]:
    known = table_schemas()
    problems = [f"requiredDataConnectors.{c}.dataTypes: unknown table {table!r}"
                for c, connector in enumerate(detection.requiredDataConnectors)
                for table in connector.dataTypes if table not in known]
    problems += [f"tests.{t}.rows: unknown table {table!r}"
                 for t, test in enumerate(detection.tests) for table in test.rows if table not in known]
    return problems
