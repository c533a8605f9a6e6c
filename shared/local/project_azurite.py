"""The project's one Azurite, shared by every local command (`demo`, `serve`, `findings`, `credentials`, ...).

The first command that needs the store starts Azurite detached, persisting to `<home>/azurite`, and writes its
process id and port to `<home>/azurite.json`; later commands (also several at once) find it there and reuse it.
A file lock (`<home>/azurite.lock`) makes the check-and-start atomic, so two commands never start two Azurites on
one folder (each would overwrite the other's data on exit). Azurite keeps running between commands, which is what
makes a listing answer quickly; `wiaudit store stop` (and `make clean`) stops it, saving its data first.
Azurite's own output goes to `<home>/azurite.log`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from shared.local.azurite import AzuriteError, AzuriteTable, answers, connection_string

STOP_TIMEOUT = 10.0  # seconds Azurite gets to save its data before it is killed


@dataclass(frozen=True)
class RunningAzurite:
    pid: int
    port: int
    location: str

    @property
    def connection_string(self) -> str:
        return connection_string(AzuriteTable.host, self.port)


class ProjectAzurite:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.location = home / "azurite"
        self.state_file = home / "azurite.json"
        self.lock_file = home / "azurite.lock"
        self.log_file = home / "azurite.log"

    def ensure_running(self) -> RunningAzurite:
        """The running Azurite, started now if none answers."""
        with self._locked():
            running = self._running()
            if running is not None:
                return running
            azurite = AzuriteTable(location=self.location, log=self.log_file).start()
            running = RunningAzurite(azurite.detach(), azurite.port, str(self.location.resolve()))
            self.state_file.write_text(json.dumps(asdict(running)) + "\n")
            return running

    def status(self) -> RunningAzurite | None:
        with self._locked():
            return self._running()

    def stop(self) -> RunningAzurite | None:
        """Stop the running Azurite (SIGINT: it saves its data; SIGKILL if it hangs); the one stopped, or None."""
        with self._locked():
            running = self._running()
            self.state_file.unlink(missing_ok=True)
            if running is None:
                return None
            _stop_process(running.pid)
            return running

    def _running(self) -> RunningAzurite | None:
        """The Azurite the state file names, if it is alive and answers on its port for this folder."""
        try:
            running = RunningAzurite(**json.loads(self.state_file.read_text()))
        except (FileNotFoundError, ValueError, TypeError):
            return None
        if running.location != str(self.location.resolve()) or not _alive(running.pid):
            return None
        return running if answers(AzuriteTable.host, running.port) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.home.mkdir(parents=True, exist_ok=True)
        with self.lock_file.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process took the id
        return False
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if Azurite is this process's child, so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _stop_process(pid: int) -> None:
    # Azurite runs in its own session (process group = its pid), so the signal reaches node and its children.
    for sig, wait in ((signal.SIGINT, STOP_TIMEOUT), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.05)
    raise AzuriteError(f"Azurite (process {pid}) did not stop")
