"""Validate KQL queries with Microsoft's own Kusto parser (npm `@kusto/language-service-next`).

One Node process (shared/kql/validate.js) parses and analyzes every query against the
Log Analytics column schemas, so unknown tables, columns and functions, type errors and
deprecated functions are caught before a query ever reaches a workspace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.tables import TableSchema, table_schemas

PACKAGE = "@kusto/language-service-next"
SCRIPT = Path(__file__).with_name("validate.js")

# Detections read these two names; the real values are supplied at run time.
# The header is a line of its own, so diagnostics move up exactly one line.
VALIDATION_HEADER = "let WindowStart = datetime(2026-01-01T00:00:00Z); let WindowEnd = datetime(2026-01-02T00:00:00Z);"
HEADER_LINES = 1

# Functions every Microsoft Sentinel workspace has, as (parameters, body) for the parser. _GetWatchlist's columns are
# the ones every watchlist has; its own CSV columns differ per watchlist, so queries read its SearchKey.
WORKSPACE_FUNCTIONS = {
    "_GetWatchlist": ("(watchlistAlias:string, keys:dynamic = dynamic([]))",
                      "{ datatable(_DTItemId:string, LastUpdatedTimeUTC:datetime, SearchKey:string, "
                      "WatchlistItem:dynamic)[] }"),
}

DEFAULT_TIMEOUT = 600.0  # a guard against a hung Node process, not a speed goal: a busy CI machine needs minutes
EXIT_PACKAGE_MISSING = 2  # validate.js: the parser package is not in node_modules
SETUP_HINT = "run `make setup` (or `npm ci` in the project root) to install it"


class KustoValidatorError(RuntimeError):
    """The Kusto parser could not be run or returned something unreadable."""


class KustoParserUnavailable(KustoValidatorError):
    """Node or the Kusto parser package is not installed."""


@dataclass(frozen=True)
class Diagnostic:
    code: str  # e.g. KS142; "PARSER" when the parser itself failed on the query
    severity: str  # "error" or "warning"
    message: str
    line: int  # 1-based, relative to the detection query; 0 = inside the validation header
    column: int  # 1-based


@dataclass(frozen=True)
class QueryCheck:
    diagnostics: tuple[Diagnostic, ...]
    columns: tuple[str, ...]  # output column names, empty if the result is not tabular

    @property
    def errors(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.severity == "error")


def project_root(start: Path = Path(__file__).resolve().parent) -> Path | None:
    """The nearest directory at or above `start` holding package.json (where node_modules lives)."""
    for directory in (start, *start.parents):
        if (directory / "package.json").is_file():
            return directory
    return None


def default_node_modules() -> Path:
    root = project_root()
    if root is None:
        raise KustoParserUnavailable(
            f"cannot find the project root (package.json above {Path(__file__).parent}) to locate "
            f"{PACKAGE}; run the validator from a source checkout and {SETUP_HINT}"
        )
    return root / "node_modules"


def _node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise KustoParserUnavailable(f"`node` is not on PATH; install Node 20+ and {SETUP_HINT}")
    return node


def _check_package(node_modules: Path) -> None:
    if not (node_modules / PACKAGE / "package.json").is_file():
        raise KustoParserUnavailable(f"{PACKAGE} is not installed in {node_modules}; {SETUP_HINT}")


def _request(queries: Sequence[tuple[str, str]], tables: Mapping[str, TableSchema], headers: Mapping[str, str]) -> str:
    return json.dumps(
        {
            "tables": {name: dict(schema.columns) for name, schema in tables.items()},
            "functions": [{"name": name, "parameters": parameters, "body": body}
                          for name, (parameters, body) in WORKSPACE_FUNCTIONS.items()],
            "queries": [
                {"name": name, "query": f"{headers.get(name, VALIDATION_HEADER)}\n{query}"} for name, query in queries
            ],
        }
    )


def _run_node(request: str, node_modules: Path, timeout: float) -> list[dict]:
    command = [_node_executable(), str(SCRIPT), str(node_modules)]
    try:
        done = subprocess.run(command, input=request, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise KustoValidatorError(f"the Kusto parser did not finish within {timeout:g} s") from exc
    if done.returncode == EXIT_PACKAGE_MISSING:
        raise KustoParserUnavailable(f"{done.stderr.strip()}; {SETUP_HINT}")
    if done.returncode != 0:
        raise KustoValidatorError(f"the Kusto parser failed (exit {done.returncode}): {done.stderr.strip()}")
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise KustoValidatorError(f"unreadable output from the Kusto parser: {done.stdout[:200]!r}") from exc


def _diagnostic(raw: Mapping) -> Diagnostic:
    """A diagnostic with its line moved from the header-prefixed text back to the query."""
    line = max(int(raw["line"]) - HEADER_LINES, 0)
    return Diagnostic(raw["code"], raw["severity"], raw["message"], line, int(raw["column"]))


def _query_check(raw: Mapping) -> QueryCheck:
    return QueryCheck(
        diagnostics=tuple(_diagnostic(d) for d in raw["diagnostics"]),
        columns=tuple(c["name"] for c in raw["columns"]),
    )


def validate_queries(
    queries: Sequence[tuple[str, str]],
    tables: Mapping[str, TableSchema] | None = None,
    *,
    node_modules: Path | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
) -> dict[str, QueryCheck]:
    """Parse and analyze each (name, query) with the Kusto parser; returns a check per name.

    `tables` defaults to every known table schema. A query's header (by
    name in `headers`, else VALIDATION_HEADER) is one line that declares `WindowStart`,
    `WindowEnd` and any other `let` names the query reads. `node_modules` defaults to the one in the project root.
    Raises KustoParserUnavailable when node or the parser package is missing.
    """
    names = [name for name, _ in queries]
    if len(set(names)) != len(names):
        raise ValueError(f"query names must be unique: {sorted({n for n in names if names.count(n) > 1})}")
    if not queries:
        return {}
    node_modules = default_node_modules() if node_modules is None else Path(node_modules)
    _check_package(node_modules)
    tables = table_schemas() if tables is None else tables
    headers = headers or {}
    if any("\n" in header for header in headers.values()):
        raise ValueError("a header must be a single line, so diagnostics keep the query's line numbers")
    results = _run_node(_request(queries, tables, headers), node_modules, timeout)
    return {raw["name"]: _query_check(raw) for raw in results}
