"""Exit codes of `wiaudit detect`, `demo` and `run` (also in the README and each command's --help)."""

from __future__ import annotations

from shared.coverage import Coverage

OK = 0
FAILED = 1  # a detection or a step of the run failed (the others ran), or the demo missed a story
USAGE = 2  # bad input: a missing folder, a bad option, setting or rule file, an unusable credential
NO_DATA = 3  # no known log table had rows in the audited range: nothing was evaluated
NOT_EVALUATED = 4  # some rules were not evaluated: a table they read had no rows in any of their windows
UNREADABLE = 5  # some log records or files could not be read (listed with file and line); the rest was audited

HELP = (f"Exit codes: {OK} every rule evaluated; {FAILED} a rule or step failed; {USAGE} bad input; "
        f"{NO_DATA} no known log table had rows in the range (files that match no table are named); "
        f"{NOT_EVALUATED} some rules not evaluated (a table they read had no rows in any of their windows); "
        f"{UNREADABLE} (detect) some log records or files could not be read, listed with file and line.")


def audit_exit(failed: bool, coverage: Coverage | None, unreadable: bool = False) -> int:
    """The most telling code: nothing evaluated, then a failure, then logs that could not be read, then rules
    without data."""
    if coverage is not None and not coverage.has_data:
        return NO_DATA
    if failed:
        return FAILED
    if unreadable:
        return UNREADABLE
    return NOT_EVALUATED if coverage is not None and coverage.not_evaluated else OK
