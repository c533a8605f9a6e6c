"""Exit codes of `wiaudit detect`, `demo` and `run` (also in the README and each command's --help)."""

OK = 0
FAILED = 1  # a detection or a step of the run failed (the others ran), or the demo missed a story
USAGE = 2  # bad input: a missing folder, a bad option, setting or rule file, an unusable credential
NO_DATA = 3  # no known log table had rows in the audited range: nothing was evaluated
NOT_EVALUATED = 4  # some detections were not evaluated: a table they read had no rows in their window

HELP = (f"Exit codes: {OK} every detection evaluated; {FAILED} a detection failed; {USAGE} bad input; "
        f"{NO_DATA} no known log table had rows in the range (files that match no table are named); "
        f"{NOT_EVALUATED} some detections not evaluated (their tables had no rows in their window).")
