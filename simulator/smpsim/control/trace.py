"""``--trace FILE.jsonl``: every event of the board as one line of JSON, for a CI artifact.

Each line goes to the file in one ``os.write`` on a descriptor opened with ``O_APPEND``, as soon
as the event is published: a process killed with SIGKILL leaves whole lines only, every one that
was published before it died. The file is appended to, so a board restarted on the same trace
adds its run after the last (``seq`` starts again at 1; its first event is the first boot's).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from smpsim.control.events import Event
from smpsim.errors import ConfigError

log = logging.getLogger(__name__)


class TraceFile:
    """A subscriber of the event hub writing each event to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ConfigError(f"--trace {path}: {exc.strerror}") from None

    def __call__(self, event: Event) -> None:
        fd = self._fd
        if fd is None:
            return
        line = (event.to_line() + "\n").encode()
        try:
            written = os.write(fd, line)
        except OSError as exc:  # a full disk must not stop the board: stop tracing instead
            log.error("trace %s: %s; tracing stops", self.path, exc.strerror)
            self.close()
            return
        if written != len(line):
            log.error("trace %s: short write (%d of %d bytes); tracing stops", self.path,
                      written, len(line))
            self.close()

    def close(self) -> None:
        """Close the file (later events are not written)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
