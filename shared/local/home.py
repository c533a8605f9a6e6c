"""Where the local commands keep their state: one folder per project, never the working directory.

The `WIAUDIT_HOME` setting names it; by default it is `.wiaudit` in the project root (the clone the `wiaudit`
command belongs to), so `wiaudit findings list` run from any directory reads the store the demo wrote.
It holds the Azurite data (`azurite/`), the running Azurite's state file, the sample tenant and the demo outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.settings import read_setting

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def local_home(environ: Mapping[str, str] | None = None) -> Path:
    configured = read_setting("WIAUDIT_HOME", environ)
    return Path(configured).expanduser().resolve() if configured else PROJECT_ROOT / ".wiaudit"
