"""What every command shares: the console, time options, and clear errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console

from shared.audit.lease import AuditAlreadyRunning
from shared.catalog.rule_files import RuleFileError
from shared.kql.validator import KustoValidatorError
from shared.logsource.base import LogQueryError
from shared.logsource.values import parse_datetime
from shared.settings import SettingsError

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
EXIT_ALREADY_RUNNING = 75  # sysexits' EX_TEMPFAIL: another audit holds the lease, try again later
SEVERITY_STYLE = {"High": "bold red", "Medium": "yellow", "Low": "cyan", "Informational": "dim"}


def parse_moment(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date and time such as 2026-03-15T06:00:00Z",
                                 param_hint=option) from None


def utc_now() -> datetime:
    return datetime.now(UTC)


def existing_folder(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise typer.BadParameter(f"{path} is not a folder", param_hint=what)
    return path


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Known failures end the command with their message and exit code 2, not a stack trace; an audit refused
    because another one is running says so in one line and exits with EXIT_ALREADY_RUNNING."""
    try:
        yield
    except AuditAlreadyRunning as error:
        errors.print(str(error), soft_wrap=True)
        raise typer.Exit(EXIT_ALREADY_RUNNING) from None
    except (RuleFileError, SettingsError, LogQueryError, KustoValidatorError, FileNotFoundError, KeyError,
            ValueError) as error:
        errors.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
