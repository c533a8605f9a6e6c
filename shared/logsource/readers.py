"""Read log files into records: JSON lines, JSON documents, portal CSV exports and Parquet.

Each record comes with where it came from, so a bad one can be reported by file and line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".parquet")


@dataclass(frozen=True)
class Location:
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Record:
    location: Location
    data: dict[str, Any] | None  # None: the line could not be read
    error: str = ""


def read_records(path: Path) -> Iterator[Record]:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path)
    elif suffix == ".parquet":
        yield from _read_parquet(path)
    else:
        yield from _read_json(path)


def _read_json(path: Path) -> Iterator[Record]:
    text = path.read_text(encoding="utf-8-sig")
    document = _whole_document(text)
    if document is not None:
        for index, item in enumerate(document, start=1):
            yield _as_record(Location(path, index), item)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as error:
            yield Record(Location(path, number), None, f"not valid JSON: {error}")
            continue
        if isinstance(item, dict) and isinstance(item.get("records"), list):
            for record in item["records"]:
                yield _as_record(Location(path, number), record)
        else:
            yield _as_record(Location(path, number), item)


def _whole_document(text: str) -> list[Any] | None:
    """The records of a file that is one JSON array or one `{"records": [...]}` batch, else None."""
    start = text.lstrip()[:1]
    if start not in ("[", "{"):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and isinstance(document.get("records"), list):
        return document["records"]
    return None


def _as_record(location: Location, item: Any) -> Record:
    if isinstance(item, dict):
        return Record(location, item)
    return Record(location, None, f"expected a JSON object, found {type(item).__name__}")


def _read_csv(path: Path) -> Iterator[Record]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = [_column_name(name) for name in next(reader, [])]
        for row in reader:
            if not row:  # a blank line, as JSON lines allow too
                continue
            location = Location(path, reader.line_num)
            if len(row) != len(header):
                yield Record(location, None, f"expected {len(header)} fields, found {len(row)}")
                continue
            yield Record(location, dict(zip(header, row, strict=True)))


def _column_name(header: str) -> str:
    """The portal's CSV export writes `TimeGenerated [UTC]`; the column is `TimeGenerated`."""
    return header.split(" [", 1)[0].strip()


def _read_parquet(path: Path) -> Iterator[Record]:
    import duckdb

    relation = duckdb.connect().read_parquet(str(path))
    columns = relation.columns
    for number, values in enumerate(relation.fetchall(), start=1):
        yield Record(Location(path, number), dict(zip(columns, values, strict=True)))
