"""Where the web pages live, without importing anything heavy: function_app.py checks paths at import time."""

from __future__ import annotations

PREFIX = "/api/ui"


def is_web_page(path: str) -> bool:
    """A path under /api/ui with no dot segment or encoded slash: the only requests the anonymous function passes."""
    if path != PREFIX and not path.startswith(PREFIX + "/"):
        return False
    lowered = path.lower()
    return "%2f" not in lowered and "%5c" not in lowered and "%2e" not in lowered and "\\" not in path \
        and all(part not in (".", "..") for part in path.split("/"))
