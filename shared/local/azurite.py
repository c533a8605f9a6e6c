"""Run Azurite's Table service (npm `azurite`) for tests and the demo.

    with AzuriteTable(location=None) as azurite:      # in-memory, free port
        service = TableServiceClient.from_connection_string(azurite.connection_string)

Azurite comes from the project's node_modules (`make setup` installs it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from shared.local.home import PROJECT_ROOT

AZURITE_TABLE = PROJECT_ROOT / "node_modules" / ".bin" / "azurite-table"

# Azurite's well-known development account (public, documented by Microsoft; not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class AzuriteError(RuntimeError):
    """Azurite is missing, did not start or did not answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def connection_string(host: str, port: int) -> str:
    return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
            f"TableEndpoint=http://{host}:{port}/{ACCOUNT_NAME};")


class AzuriteTable:
    """Azurite's Table service as a context manager: started on enter, stopped on exit.

    `location` is the directory Azurite persists to; None keeps everything in memory.
    `port` 0 picks a free port. `log`: a file for Azurite's output (default: a temporary file).
    """

    host = "127.0.0.1"

    def __init__(self, location: Path | None = None, port: int = 0, *, timeout: float = 120.0,
                 executable: Path = AZURITE_TABLE, log: Path | None = None) -> None:
        self.location = location.resolve() if location is not None else None
        self.log = log
        self.port = port or free_port(self.host)
        self.timeout = timeout
        self.executable = executable
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr = None  # a temporary file, not a pipe: a full pipe would block Azurite

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return connection_string(self.host, self.port)

    def command(self) -> list[str]:
        storage = ["--location", str(self.location)] if self.location is not None else ["--inMemoryPersistence"]
        return [str(self.executable), "--tableHost", self.host, "--tablePort", str(self.port), *storage,
                "--disableTelemetry", "--silent", "--skipApiVersionCheck"]

    def start(self) -> AzuriteTable:
        if self._process is not None:
            return self
        if not self.executable.exists():
            raise AzuriteError(f"Azurite is not installed ({self.executable} is missing); run `make setup`")
        if shutil.which("node") is None:
            raise AzuriteError("Node.js is not on PATH; Azurite needs Node 20+ (see `make setup`)")
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        self._stderr = self.log.open("w+b") if self.log else tempfile.TemporaryFile()  # noqa: SIM115
        self._process = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=self._stderr, cwd=PROJECT_ROOT, start_new_session=True)
        deadline = time.monotonic() + self.timeout
        while not answers(self.host, self.port):
            code = self._process.poll()
            if code is not None:
                self._stderr.seek(0)
                stderr = self._stderr.read().decode(errors="replace")
                self._stderr.close()
                self._process = self._stderr = None
                raise AzuriteError(f"Azurite exited with code {code}; is port {self.port} free? "
                                   f"Run `make setup` if node_modules is incomplete. {stderr.strip()[-500:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise AzuriteError(f"Azurite did not answer on {self.host}:{self.port} within {self.timeout:.0f} s "
                                   "(run `make setup` if node_modules is incomplete)")
            time.sleep(0.05)
        return self

    def detach(self) -> int:
        """Leave Azurite running on its own (this object no longer stops it); its process id."""
        process, self._process = self._process, None
        if process is None:
            raise AzuriteError("Azurite is not running")
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        return process.pid

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # SIGINT is Azurite's graceful shutdown (it saves --location data); SIGKILL if it hangs.
        # It runs in its own session, so the signal reaches the whole process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> AzuriteTable:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
