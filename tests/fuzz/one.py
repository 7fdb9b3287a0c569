"""One fuzz target under atheris (libFuzzer, guided by smpsim's coverage), in a process of its
own: ``python -m tests.fuzz.one TARGET STATS REPRO_DIR [libFuzzer options] [corpus dir]``.

``STATS`` gets ``{"inputs": n, "units": n}`` as it goes; a crash is replayed on a fresh board
(alone, then after the inputs before it) and the shortest replay that crashes again is written
to ``REPRO_DIR`` before the exception ends the run. ``run.py`` drives this; run that instead.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import deque
from pathlib import Path

import atheris

# smpsim is imported here first, so that every module of it is instrumented for coverage.
with atheris.instrument_imports(include=["smpsim"]):
    from tests.fuzz import targets as t

HISTORY = 32
"""Inputs kept to replay before a crashing one that does not crash a fresh board alone."""


class Run:
    """The state of this process's campaign."""

    def __init__(self, target: t.Target, stats: Path, repro: Path) -> None:
        self.target = target
        self.stats = stats
        self.repro = repro
        self.fed = target.make()
        self.inputs = 0
        self.units = 0
        self.since_rebuild = 0
        self.history: deque[bytes] = deque(maxlen=HISTORY)
        self.written = 0.0
        self._failures = t.watching()
        self.failures = self._failures.__enter__()

    def one(self, data: bytes) -> None:
        seen = len(self.failures.messages)
        problem = None
        try:
            self.units += self.fed.feed(data)
        except Exception as exc:  # a crash of the target, whatever it is
            problem = f"{type(exc).__name__}: {exc}"
        if problem is None and len(self.failures.messages) > seen:
            problem = self.failures.messages[seen]
        self.inputs += 1
        self.since_rebuild += 1
        if problem is not None:
            self.write_stats(force=True)
            saved = self.save(data)
            raise t.Crash(f"{self.target.name}: {problem} (reproducer: {saved})")
        self.history.append(data)
        if self.since_rebuild >= t.REBUILD_EVERY:
            self.fed.board.close()
            self.fed = self.target.make()
            self.since_rebuild = 0
            self.history.clear()
        self.write_stats()

    def save(self, data: bytes) -> Path:
        chosen = [data]
        for inputs in ([data], [*self.history, data]):
            try:
                crashes = bool(t.replay(self.target, inputs))
            except Exception:
                crashes = True
            if crashes:
                chosen = inputs
                break
        encoded = t.encode_corpus(chosen)
        self.repro.mkdir(parents=True, exist_ok=True)
        path = self.repro / f"{hashlib.sha256(encoded).hexdigest()[:16]}.cbor"
        path.write_bytes(encoded)
        return path

    def write_stats(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self.written > 0.5:  # libFuzzer ends the process without notice
            self.written = now
            self.stats.write_text(json.dumps({"inputs": self.inputs, "units": self.units}))


def main() -> None:
    name, stats, repro, *options = sys.argv[1:]
    run = Run(t.by_name(name), Path(stats), Path(repro))
    atheris.Setup([sys.argv[0], *options], run.one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
