"""`wiaudit directory export`: write one inventory of a Directory as a snapshot file.

The file has the sample tenant's format (`DirectorySnapshot.save`), so `SnapshotFileDirectory`
audits it offline later. It is written next to its target and renamed into place, so an
interrupted export never leaves a truncated snapshot behind.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from shared.directory.model import DirectorySnapshot
from shared.directory.port import Directory


def export_directory(directory: Directory, out: Path) -> DirectorySnapshot:
    """Read the directory once and write the snapshot to `out`; returns what was written."""
    snapshot = directory.inventory()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(handle)
    try:
        snapshot.save(Path(temporary))
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return snapshot
