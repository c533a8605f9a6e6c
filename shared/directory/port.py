"""The Directory port: one bulk read of the tenant's workload identities."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from shared.directory.model import DirectorySnapshot


class Directory(Protocol):
    def inventory(self) -> DirectorySnapshot: ...


class SnapshotFileDirectory:
    """A snapshot file: the sample tenant's, or one `wiaudit directory export` wrote."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def inventory(self) -> DirectorySnapshot:
        if not self.path.is_file():
            raise FileNotFoundError(f"directory snapshot {self.path} does not exist")
        return DirectorySnapshot.load(self.path)
