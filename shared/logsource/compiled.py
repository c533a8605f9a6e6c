"""KQL compiled to DuckDB SQL once, and kept on disk for the next command.

Translating a detection (an ANTLR parse and lowering in Python) costs a few tenths of a CPU-second, far more than
running it on a small folder, and every command used to pay it for the whole catalog. A translation depends only on
the query text, the tables' columns (joins read them), the duckdb-kql version and the stored functions set in it
(`duckdb_kql.set_functions`), so it is cached under a hash of those in the local home (`cache/kql/`). A cache that
cannot be written (a read-only deployment) is skipped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

Schema = dict[str, list[str]]
_CLOCK_SLOT = "kqlnow"  # duckdb-kql's placeholder for the pinned clock of ago() and now()


@dataclass(frozen=True)
class CompiledQuery:
    """The SQL of a query whose `declare query_parameters` are placeholders; `slots` maps each parameter the SQL
    reads to its placeholder."""

    sql: str
    slots: dict[str, str]
    reads_clock: bool

    def values(self, parameters: dict[str, datetime], now: datetime) -> dict[str, Any]:
        values: dict[str, Any] = {slot: parameters[name] for name, slot in self.slots.items()}
        if self.reads_clock:
            values[_CLOCK_SLOT] = now.astimezone(UTC).replace(tzinfo=None) if now.tzinfo else now
        return values


def compile_query(text: str, schema: Schema, parameters: dict[str, datetime], now: datetime) -> CompiledQuery:
    """The query translated for a database of `schema`; the parameter values only show their types."""
    key = cache_key("sql", text, schema)
    if (record := _read(key)) is not None:
        return CompiledQuery(record["sql"], record["slots"], record["reads_clock"])
    import duckdb_kql  # here, not at import: loading its parser costs commands that run no query

    translated = duckdb_kql.to_sql(text, schema=schema, parameters=parameters, query_now=now)
    compiled = CompiledQuery(str(translated),
                             {d.name: d.slot for d in translated.declarations if d.slot in translated.slots},
                             _CLOCK_SLOT in translated.parameters)
    _write(key, {"sql": compiled.sql, "slots": compiled.slots, "reads_clock": compiled.reads_clock})
    return compiled


def remembered(kind: str, text: str, schema: Schema) -> Any:
    """A fact about a query stored by `remember` (e.g. its output columns), or None."""
    record = _read(cache_key(kind, text, schema))
    return None if record is None else record["value"]


def remember(kind: str, text: str, schema: Schema, value: Any) -> None:
    _write(cache_key(kind, text, schema), {"value": value})


def cache_key(kind: str, text: str, schema: Schema) -> str:
    material = json.dumps([kind, _engine_version(), text, schema, _stored_functions()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()


def _stored_functions() -> list[str]:
    """The definitions of duckdb-kql's process-wide stored functions: a query calling one translates to its body.
    None can be set before duckdb-kql is loaded, so this does not load it."""
    engine = sys.modules.get("duckdb_kql")
    stored = engine.get_functions() if engine is not None else None
    return sorted(function.command for database in (stored or {}).values() for function in database.values())


@cache
def _engine_version() -> str:
    from importlib.metadata import version

    return version("duckdb-kql")


def _cache_dir() -> Path:
    from shared.local.home import local_home

    return local_home() / "cache" / "kql"


def _read(key: str) -> dict[str, Any] | None:
    try:
        return json.loads((_cache_dir() / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, unreadable or half-written: translate again
        return None


def _write(key: str, record: dict[str, Any]) -> None:
    folder = _cache_dir()
    partial = folder / f"{key}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(record), encoding="utf-8")
        partial.replace(folder / f"{key}.json")  # atomic: a concurrent reader sees the whole record or none
    except OSError:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
