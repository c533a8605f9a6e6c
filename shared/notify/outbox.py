"""A notifier that writes each digest to a folder as the channel would render it, then optionally delivers it.

    teams -> <folder>/<run_id>-teams.json   the Workflows webhook message (Adaptive Card), as posted
    email -> <folder>/<run_id>-email.html   the HTML body (its <title> is the subject)
             <folder>/<run_id>-email.txt    the plain-text rendering

The demo uses it alone (`OutboxNotifier(None, folder, channel="teams")`): nothing leaves the machine and
the files can be opened; a folder it cannot write is a NotificationError. Wrapping a real notifier
(`OutboxNotifier(TeamsNotifier(...), folder)`) keeps a copy of what was sent: the files are written first,
so they exist even when delivery then fails, and a copy that cannot be written only logs a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from shared.notify.email import email_message
from shared.notify.port import Digest, NotificationError, Notifier
from shared.notify.teams_card import teams_message

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _teams_files(digest: Digest) -> dict[str, str]:
    return {"json": json.dumps(teams_message(digest), ensure_ascii=False, indent=2) + "\n"}


def _email_files(digest: Digest) -> dict[str, str]:
    content = email_message(digest)
    return {"html": content.html, "txt": content.text}


# channel -> the files it renders, by extension. One entry per channel a Notifier can have.
RENDERERS: dict[str, Callable[[Digest], dict[str, str]]] = {"teams": _teams_files, "email": _email_files}


def file_stem(run_id: str, channel: str) -> str:
    stem = _UNSAFE.sub("_", run_id).strip("._") or "run"
    return f"{stem[:150]}-{channel}"


def write_file(path: Path, text: str) -> None:
    """Replace `path` atomically, so a reader never sees half a digest."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class OutboxNotifier:
    """Writes `<folder>/<run_id>-<channel>.*` for every digest, then hands it to `inner` when there is one.

    `channel`: the rendering to write; taken from `inner` when given (and then must agree with it).
    `written`: every path written so far, in order; `write` returns the paths of one digest.
    """

    def __init__(self, inner: Notifier | None, folder: Path, channel: str | None = None) -> None:
        if inner is not None:
            if channel is not None and channel != inner.channel:
                raise ValueError(f"channel {channel!r} does not match the wrapped notifier's {inner.channel!r}")
            channel = inner.channel
        if channel is None:
            raise ValueError("OutboxNotifier needs a channel when it wraps no notifier")
        if channel not in RENDERERS:
            raise ValueError(f"no outbox rendering for channel {channel!r}; expected one of {', '.join(RENDERERS)}")
        self.inner = inner
        self.folder = Path(folder)
        self.channel = channel
        self.written: list[Path] = []

    def __repr__(self) -> str:
        return f"OutboxNotifier({self.inner!r}, {str(self.folder)!r}, channel={self.channel!r})"

    def write(self, digest: Digest) -> list[Path]:
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = file_stem(digest.run_id, self.channel)
        paths = []
        for extension, text in RENDERERS[self.channel](digest).items():
            path = self.folder / f"{stem}.{extension}"
            write_file(path, text)
            paths.append(path)
        self.written.extend(paths)
        return paths

    def send(self, digest: Digest) -> None:
        try:
            self.write(digest)
        except OSError as error:
            if self.inner is None:  # the outbox is the delivery: the digest stays pending
                raise NotificationError(
                    f"could not write the {self.channel} digest to {self.folder}: {error}") from None
            log.warning("could not keep a copy of the %s digest in %s: %s", self.channel, self.folder, error)
        if self.inner is not None:
            self.inner.send(digest)
