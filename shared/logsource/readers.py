"""Stage log files in DuckDB: one JSON object per record with the file and line it came from.

DuckDB reads every format itself (JSON lines and documents, the portal's CSV export, Parquet, and the `.gz` of
each); Python only decides how to read a file and words the problems. A file that cannot be read at all is an
`UnreadableFile` naming it; a bad record is a row of `_problems` with its line, and the others load.
"""

from __future__ import annotations

import csv
import gzip
import json
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMATS = {".json": "json", ".jsonl": "json", ".ndjson": "json", ".log": "json", ".csv": "csv",
           ".parquet": "parquet"}
STAGING = """
CREATE OR REPLACE TEMP TABLE _items (file INTEGER, line BIGINT, item VARCHAR);  -- JSON text, parsed once
CREATE OR REPLACE TEMP TABLE _problems (file INTEGER, line BIGINT, message VARCHAR);
"""
_LINES = ("columns={'text': 'VARCHAR'}, header=false, delim=chr(1), quote='', escape='', auto_detect=false, "
          "store_rejects=true, max_line_size=268435456")
_CSV = ("header=true, all_varchar=true, delim=',', quote='\"', escape='\"', store_rejects=true, "
        "nullstr=chr(2), allow_quoted_nulls=false, max_line_size=268435456")
CHUNK_BYTES = 256 * 1024 * 1024
WHOLE_BYTES = 64 * 1024 * 1024  # a JSON file up to this size is read whole and split at its line ends
_TYPICAL_BYTES = 256 * 1024  # an hour of one category in a PT1H.json blob, to size chunks without a stat per file
_DETAILED = 1000  # invalid JSON lines explained one by one (Python's parser words it); the rest in one line each
_JSON_KINDS = {"ARRAY": "an array", "VARCHAR": "a string", "UBIGINT": "a number", "BIGINT": "a number",
               "DOUBLE": "a number", "BOOLEAN": "true or false", "NULL": "null"}


class UnreadableFile(ValueError):
    """The whole file could not be read; the message says why, in words for the person who has it."""


@dataclass(frozen=True)
class Location:
    path: Path
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else str(self.path)


def add_problems(connection: Any, problems: list[tuple[int, int | None, str]]) -> None:
    """(file, line, message) rows into `_problems`."""
    if problems:
        connection.executemany("INSERT INTO _problems VALUES (?, ?, ?)", problems)


def log_format(path: Path) -> str | None:
    """'json', 'csv' or 'parquet' for a log file (also gzip-compressed, `name.json.gz`); None for anything else."""
    suffixes = [suffix.lower() for suffix in path.suffixes[-2:]]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return FORMATS.get(suffixes[-1]) if suffixes else None


def stage_files(connection: Any, paths: list[Path], progress: Callable[[Path, int], None] | None = None
                ) -> dict[int, str]:
    """Add the records of the files to `_items` (file = its index in `paths`) and their bad records to `_problems`;
    `progress(path, size)` after each file is staged. Returns why each file that could not be read at all was
    skipped, by index. JSON files are read many at a time, up to CHUNK_BYTES (one DuckDB scan each)."""
    unreadable: dict[int, str] = {}
    chunks: dict[str, list[dict[int, Path]]] = {"none": [{}], "gzip": [{}]}
    for file, path in enumerate(paths):
        try:
            compression = _compression(path)
            if log_format(path) == "json":
                _add_to_chunk(chunks[compression], file, path)
                continue
            _stage_table_file(connection, path, file, compression)
        except UnreadableFile as error:
            unreadable[file] = str(error)
        if progress:
            progress(path, path.stat().st_size)
    for compression, batches in chunks.items():
        for batch in batches:
            unreadable.update(_stage_json_files(connection, batch, compression))
            for path in batch.values():
                if progress:
                    progress(path, path.stat().st_size)
    return unreadable


def _add_to_chunk(chunks: list[dict[int, Path]], file: int, path: Path) -> None:
    if len(chunks[-1]) * _TYPICAL_BYTES >= CHUNK_BYTES:
        chunks.append({})
    chunks[-1][file] = path


def _stage_table_file(connection: Any, path: Path, file: int, compression: str) -> None:
    """A CSV or Parquet file: DuckDB reads its columns."""
    try:
        if log_format(path) == "csv":
            _stage_csv(connection, path, file, compression)
        else:
            _stage_parquet(connection, path, file, compression)
    except UnreadableFile:
        raise
    except Exception as error:  # duckdb raises one class per cause; each means this file could not be read
        raise UnreadableFile(f"could not be read: {_first_line(error)}") from error
    finally:
        connection.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans;"
                           "DROP TABLE IF EXISTS _csv")


def _compression(path: Path) -> str:
    """gzip whatever the name says (a PT1H.json downloaded compressed); a UTF-16 or binary file is unreadable."""
    with path.open("rb") as handle:
        head = handle.read(4096)
    compression = "none"
    if head[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as handle:
            try:
                head = handle.read(4096)
            except (OSError, EOFError) as error:
                raise UnreadableFile(f"is not a readable gzip file: {error}") from error
        compression = "gzip"
    if log_format(path) == "parquet":
        if head[:4] != b"PAR1":
            raise UnreadableFile("is not a Parquet file")
    elif head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head:
        raise UnreadableFile("is not UTF-8 text (UTF-16 or binary): save it as UTF-8")
    return compression


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


# --- JSON lines and JSON documents --------------------------------------------------------------------------------

def _stage_json_files(connection: Any, paths: dict[int, Path], compression: str) -> dict[int, str]:
    """Stage many JSON files in one read; when DuckDB cannot read the batch, file by file to name the culprit.
    Returns why each unreadable file could not be read."""
    if not paths:
        return {}
    try:
        _read_lines(connection, paths, compression)
    except Exception as error:  # duckdb raises one class per cause; each means a file could not be read
        if len(paths) == 1:
            return {file: f"could not be read: {_first_line(error)}" for file in paths}
        unreadable: dict[int, str] = {}
        for file, path in paths.items():
            unreadable.update(_stage_json_files(connection, {file: path}, compression))
        return unreadable
    finally:
        connection.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    unreadable = {}
    lines, positional = [], []
    for file, first, count, valid, batch in connection.execute("""
            SELECT file, first, count, kinds IS NOT NULL, coalesce('ARRAY' IN (kinds[1], kinds[2]), false)
            FROM (SELECT file, arg_min(text, line) AS first, arg_min(kinds, line) AS kinds, count(*) AS count
                  FROM _lines GROUP BY file)""").fetchall():
        if not valid and first.lstrip()[:1] in ("[", "{"):
            try:
                if _stage_document(connection, paths[file], file, compression):
                    continue
            except UnreadableFile as error:
                unreadable[file] = str(error)
                continue
        (positional if count == 1 and batch else lines).append(file)
    if positional:
        _stage_elements(connection, f"SELECT file, 1 AS line, text::JSON AS doc FROM _lines "
                                    f"WHERE file IN ({_listed(positional)})", positional=True)
    if lines:
        _stage_lines(connection, lines)
    connection.execute("DROP TABLE _lines")
    return unreadable


def _read_lines(connection: Any, paths: dict[int, Path], compression: str) -> None:
    """`_lines` (file, line, text, kinds): every line of the files that is not blank (only spaces, which `trim`
    removes: Unicode's space separators), with the JSON types of the line and of its `records` (NULL: not valid
    JSON); lines DuckDB rejected (not UTF-8) are problems."""
    connection.execute("CREATE OR REPLACE TEMP TABLE _names AS SELECT unnest($1) AS filename, unnest($2) AS file",
                       [[str(path) for path in paths.values()], list(paths)])
    if not (compression == "none" and _split_whole_files(connection, paths)):
        _keep_lines(connection, _csv_lines(connection, paths, compression))
        connection.execute("DROP TABLE _read")


def _keep_lines(connection: Any, numbered: str, parameters: list | None = None) -> None:
    """`_lines` from the SQL `numbered` (file, line, text)."""
    connection.execute(f"""
        CREATE OR REPLACE TEMP TABLE _lines AS
        SELECT *, CASE WHEN json_valid(text) THEN json_type(text, ['$', '$.records']) END AS kinds FROM (
            SELECT file, line, CASE WHEN line = 1 THEN ltrim(text, chr(65279)) ELSE text END AS text  -- a UTF-8 BOM
            FROM ({numbered}))
        WHERE regexp_matches(text, '[^\\p{{Zs}}]')""", parameters)


def _split_whole_files(connection: Any, paths: dict[int, Path]) -> bool:
    """`_lines` from each file read whole and split at its line ends, when all are UTF-8 and none is bigger than
    WHOLE_BYTES. False when not (the lines are then read one by one, to find the bad ones)."""
    if any(path.stat().st_size > WHOLE_BYTES for path in paths.values()):
        return False
    try:
        _keep_lines(connection, """
            SELECT file, line, CASE WHEN ends_with(text, chr(13)) THEN left(text, -1) ELSE text END AS text
            FROM (SELECT n.file, generate_subscripts(lines, 1) AS line, unnest(lines) AS text
                  FROM (SELECT filename, string_split(content, chr(10)) AS lines FROM read_text(?))
                  JOIN _names n USING (filename))""", [[str(path) for path in paths.values()]])
    except Exception:  # duckdb raises one class per cause; the line reader words each, or names the file
        return False
    return True


def _csv_lines(connection: Any, paths: dict[int, Path], compression: str) -> str:
    """SQL (file, line, text) over `_read`, the lines as DuckDB's CSV reader read them, one column per line: it
    decompresses, and rejects the lines that are not UTF-8 (problems) while the others load."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE _read AS SELECT filename, text FROM read_csv(?, {_LINES}, "
                       "compression=?, filename=true)", [[str(path) for path in paths.values()], compression])
    return f"""
        SELECT n.file, coalesce(m.line, r.k) AS line, r.text
        FROM (SELECT filename, text, row_number() OVER (PARTITION BY filename ORDER BY rowid) AS k FROM _read) r
        JOIN _names n USING (filename)
        LEFT JOIN ({_rejected_lines(connection)}) m ON m.file = n.file AND m.k = r.k"""


def _rejected_lines(connection: Any) -> str:
    """SQL (file, k, line): the line of the k-th line DuckDB kept, for files where it rejected some; the rejected
    lines become problems."""
    none = "SELECT NULL::INTEGER AS file, NULL::BIGINT AS k, NULL::BIGINT AS line WHERE false"
    if not _has_rejects(connection):
        return none
    connection.execute("""
        CREATE OR REPLACE TEMP TABLE _rejected AS
        SELECT n.file, e.line FROM reject_errors e JOIN reject_scans s USING (scan_id, file_id)
        JOIN _names n ON n.filename = s.file_path""")
    connection.execute("INSERT INTO _problems SELECT file, line, 'is not UTF-8 text' FROM _rejected")
    return """
        SELECT file, line, row_number() OVER (PARTITION BY file ORDER BY line) AS k
        FROM (SELECT t.file, unnest(range(1, t.total + 1)) AS line
              FROM (SELECT r.file, (SELECT count(*) FROM _read d JOIN _names n USING (filename) WHERE n.file = r.file)
                           + count(*) AS total FROM _rejected r GROUP BY r.file) t)
        WHERE (file, line) NOT IN (SELECT (file, line) FROM _rejected)"""


def _has_rejects(connection: Any) -> bool:
    """Whether DuckDB's reader rejected a line (its table exists only then)."""
    found = "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'reject_errors'"
    return connection.execute(found).fetchone()[0] > 0


def _listed(files: list[int]) -> str:
    return ", ".join(str(file) for file in files)


def _stage_lines(connection: Any, files: list[int]) -> None:
    """JSON lines: each line one record, or an Event Hub batch `{"records": [...]}` whose records share its line."""
    listed = f"file IN ({_listed(files)})"
    invalid = connection.execute(f"SELECT file, line, text FROM _lines WHERE kinds IS NULL "
                                 f"AND {listed} ORDER BY file, line").fetchall()
    add_problems(connection, [(file, line, _json_problem(text, index))
                              for index, (file, line, text) in enumerate(invalid)])
    _stage_elements(connection, f"SELECT file, line, text AS doc FROM _lines WHERE kinds[2] = 'ARRAY' AND {listed}",
                    positional=False)
    connection.execute(f"INSERT INTO _items SELECT file, line, text FROM _lines WHERE kinds[1] = 'OBJECT' "
                       f"AND coalesce(kinds[2], '') <> 'ARRAY' AND {listed}")
    connection.execute(f"INSERT INTO _problems SELECT file, line, {_not_an_object('kinds[1]')} FROM _lines "
                       f"WHERE kinds[1] <> 'OBJECT' AND {listed}")


def _stage_document(connection: Any, path: Path, file: int, compression: str) -> bool:
    """A pretty-printed JSON array or `{"records": [...]}`: records are numbered by their position. False when the
    file is not one JSON document but has JSON lines (the first one broken), to be read line by line."""
    try:
        connection.execute("CREATE OR REPLACE TEMP TABLE _document AS SELECT json AS doc FROM read_json_objects(?, "
                           "format='unstructured', compression=?, maximum_object_size=2147483647)",
                           [str(path), compression])
    except Exception as error:  # any parse failure: not one JSON document
        if connection.execute(f"SELECT count(*) FROM _lines WHERE file = {file} AND kinds IS NOT NULL").fetchone()[0]:
            return False
        raise UnreadableFile(f"is not valid JSON: {_first_line(error)}") from error
    _stage_elements(connection, f"SELECT {file} AS file, 1 AS line, doc FROM _document", positional=True)
    connection.execute("DROP TABLE _document")
    return True


def _stage_elements(connection: Any, documents: str, positional: bool) -> None:
    """The records of arrays and batches in `documents` (file, line, doc); numbered by position or by their line."""
    elements = ("CASE WHEN json_type(doc) = 'ARRAY' THEN json_extract(doc, '$[*]') "
                "WHEN json_type(doc, '$.records') = 'ARRAY' THEN json_extract(doc, '$.records[*]') "
                "ELSE [doc] END")
    line = "position" if positional else "line"
    connection.execute(f"""
        CREATE OR REPLACE TEMP TABLE _elements AS
        SELECT file, line, unnest(elements) AS item, unnest(range(1, len(elements) + 1)) AS position
        FROM (SELECT file, line, {elements} AS elements FROM ({documents}))""")
    connection.execute(f"INSERT INTO _items SELECT file, {line}, item FROM _elements WHERE json_type(item) = 'OBJECT'")
    connection.execute(f"INSERT INTO _problems SELECT file, {line}, {_not_an_object('json_type(item)')} FROM _elements "
                       "WHERE json_type(item) <> 'OBJECT'")
    connection.execute("DROP TABLE _elements")


def _not_an_object(json_type: str) -> str:
    kinds = " ".join(f"WHEN '{kind}' THEN '{words}'" for kind, words in _JSON_KINDS.items())
    return f"'expected a JSON object, found ' || CASE {json_type} {kinds} ELSE 'something else' END"


def _json_problem(text: str, index: int) -> str:
    if index >= _DETAILED:
        return "not valid JSON"
    try:
        json.loads(text)
    except RecursionError:
        return "not valid JSON: nested too deeply"
    except ValueError as error:
        return f"not valid JSON: {error}"
    return "not valid JSON"


# --- the portal's CSV export --------------------------------------------------------------------------------------

_FIELDS = re.compile(r"Expected Number of Columns: (\d+) Found: (\d+)")


def _stage_csv(connection: Any, path: Path, file: int, compression: str) -> None:
    """Rows are numbered by their position among the good rows; `csv_lines` turns that into line numbers."""
    connection.execute(f"CREATE OR REPLACE TEMP TABLE _csv AS SELECT * FROM read_csv(?, {_CSV}, compression=?)",
                       [str(path), compression])
    rejects = "SELECT line, error_message FROM reject_errors ORDER BY line"
    for line, message in connection.execute(rejects).fetchall() if _has_rejects(connection) else []:
        fields = _FIELDS.search(message)
        words = f"expected {fields.group(1)} fields, found {fields.group(2)}" if fields else _first_line(
            Exception(message))
        add_problems(connection, [(file, line, words)])
    headers = [row[0] for row in connection.execute("DESCRIBE _csv").fetchall()]
    pairs = ", ".join(f"{_quote_text(column_name(header))}, {_quote_name(header)}" for header in headers)
    connection.execute(f"INSERT INTO _items SELECT {file}, rowid + 1, json_object({pairs}) FROM _csv")


def column_name(header: str) -> str:
    """The portal's CSV export writes `TimeGenerated [UTC]`; the column is `TimeGenerated`."""
    return header.split(" [", 1)[0].strip()


def csv_lines(path: Path) -> dict[int, int]:
    """Position among the good rows of a CSV file -> its line number (rows that DuckDB reads: not blank, with as
    many fields as the header). Read only to word the problems of a file that has some."""
    opener = gzip.open if _compression(path) == "gzip" else open
    with opener(path, "rt", newline="", encoding="utf-8-sig", errors="replace") as handle:
        reader = csv.reader(handle)
        width = len(next(reader, []))
        good = (reader.line_num for row in reader if row and len(row) == width)
        return dict(enumerate(good, start=1))


# --- Parquet ------------------------------------------------------------------------------------------------------

def _stage_parquet(connection: Any, path: Path, file: int, compression: str) -> None:
    """Parquet compresses inside; a gzip-compressed copy is unpacked to a scratch file first."""
    if compression == "gzip":
        with tempfile.TemporaryDirectory() as scratch:
            unpacked = Path(scratch) / path.name.removesuffix(".gz")
            with gzip.open(path, "rb") as packed, unpacked.open("wb") as handle:
                shutil.copyfileobj(packed, handle)
            try:
                _stage_parquet(connection, unpacked, file, "none")
            except Exception as error:  # word it with the user's file, never the scratch copy
                raise UnreadableFile(f"could not be read: {_first_line(error).replace(str(unpacked), str(path))}") \
                    from error
        return
    relation = connection.sql("SELECT * FROM read_parquet(?) LIMIT 0", params=[str(path)])
    pairs = ", ".join(f"{_quote_text(name)}, {_quote_name(name)}" for name in relation.columns)
    connection.execute(f"INSERT INTO _items SELECT {file}, file_row_number + 1, json_object({pairs}) "
                       "FROM read_parquet(?, file_row_number=true)", [str(path)])


def _quote_name(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
