"""Load a folder once, audit it many times: the loaded tables are kept in a DuckDB file under the local home
(`logs/<folder key>-<content key>.duckdb`) beside a manifest of every file's path, size and modification time,
and what the load reported. The copy is used while the manifest still matches the folder; a file changed, added
or removed loads the folder again. Several commands may read one copy at once (it is opened read-only)."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from shared.logsource.database import LoadProblem, LoadReport, LogDatabase, Progress
from shared.logsource.readers import Location


@dataclass(frozen=True)
class LoadedLogs:
    database: LogDatabase
    report: LoadReport
    loaded_at: datetime
    reused: bool  # True: the copy loaded earlier was used; no file was read


def load_once(folder: Path, store: Path, progress: Progress | None = None) -> LoadedLogs:
    """The folder's logs: the copy in `store` when every file is as it was then, else loaded now and kept."""
    if not folder.is_dir():
        raise FileNotFoundError(f"log folder {folder} does not exist")
    folder = folder.resolve()
    manifest = _manifest(folder)
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:20]
    record = store / f"{key}.json"
    kept = _kept(record)
    if kept and kept["manifest"] == manifest and (store / kept["copy"]).exists():
        return LoadedLogs(LogDatabase.reopen(store / kept["copy"]), _report(kept["report"]),
                          datetime.fromisoformat(kept["loaded_at"]), reused=True)
    store.mkdir(parents=True, exist_ok=True)
    record.unlink(missing_ok=True)
    for stale in store.glob(f"{key}-*.duckdb"):
        stale.unlink()  # a command still reading it keeps its open file
    # A new name per content: DuckDB caches an open database by its path, so a path is never reused for other data.
    copy = store / f"{key}-{hashlib.sha256(json.dumps(manifest).encode()).hexdigest()[:12]}.duckdb"
    building = copy.with_suffix(f".{os.getpid()}.building")
    building.unlink(missing_ok=True)
    database = LogDatabase(building)
    report = database.load_folder(folder, progress)
    database.connection.close()
    os.replace(building, copy)
    loaded_at = datetime.now(UTC)
    _write_json(record, {"folder": str(folder), "copy": copy.name, "manifest": manifest,
                         "loaded_at": loaded_at.isoformat(), "report": _report_json(report)})
    return LoadedLogs(LogDatabase.reopen(copy), report, loaded_at, reused=False)


def _manifest(folder: Path) -> list[list]:
    """Every file below the folder (log or not: an added file can change what is reported) with size and mtime."""
    files = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            stat = path.stat()
            files.append([str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns])
    return files


def _kept(record: Path) -> dict | None:
    try:
        return json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_json(path: Path, document: dict) -> None:
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps(document), encoding="utf-8")
    os.replace(partial, path)


def _report_json(report: LoadReport) -> dict:
    return {"rows": dict(report.rows), "files": report.files,
            "problems": [[str(p.location.path), p.location.line, p.message] for p in report.problems],
            "unmatched": [str(path) for path in report.unmatched],
            "unreadable": [str(path) for path in report.unreadable]}


def _report(document: dict) -> LoadReport:
    return LoadReport(rows=Counter(document["rows"]), files=document["files"],
                      problems=[LoadProblem(Location(Path(path), line), message)
                                for path, line, message in document["problems"]],
                      unmatched=[Path(path) for path in document["unmatched"]],
                      unreadable=[Path(path) for path in document["unreadable"]])
