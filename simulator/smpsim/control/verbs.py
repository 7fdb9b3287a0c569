"""The control plane's verbs for code that runs outside the board's event loop (the pytest
plugin's device handle): each call hops into the board's thread and waits for the answer, with
no HTTP port opened.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from smpsim.control.plane import ControlPlane

T = TypeVar("T")
Call = Callable[[Callable[[ControlPlane], T]], T]
"""Runs a function of the plane in the board's thread and returns its result."""


class FaultVerbs:
    """``device.faults``: add, list and clear faults (the JSON of ``POST /api/faults``)."""

    def __init__(self, call: Call[Any]) -> None:
        self._call = call

    def add(self, family: str, kind: str, **fields: Any) -> dict[str, Any]:
        """Add a fault; returns it as listed (with its ``id``). ``ValueError`` names a bad
        field."""
        return self.add_spec({"family": family, "kind": kind, **fields})

    def add_spec(self, spec: Any) -> dict[str, Any]:
        """Add a fault from its JSON description, as ``POST /api/faults`` takes it."""
        result: dict[str, Any] = self._call(lambda plane: plane.add_fault(spec))
        return result

    def list(self) -> list[dict[str, Any]]:
        """Every fault added, with its hits and whether it is still active."""
        result: list[dict[str, Any]] = self._call(lambda plane: plane.list_faults())
        return result

    def clear(self, fault_id: str | None = None) -> None:
        """Clear one fault, or every fault."""
        if fault_id is None:
            self._call(lambda plane: plane.clear_faults())
        elif not self._call(lambda plane: plane.clear_fault(fault_id)):
            raise KeyError(f"no fault {fault_id!r}")

    # The families' kinds, by name.
    def drop_requests(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The board never hears the next ``n`` requests (``n=None``: use ``probability``)."""
        return self.add("link", "drop_requests", count=n, **fields)

    def drop_responses(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The board's next ``n`` responses are lost on the way."""
        return self.add("link", "drop_responses", count=n, **fields)

    def delay(self, ms: float, jitter_ms: float = 0.0, **fields: Any) -> dict[str, Any]:
        """Every unit (``direction``: requests, responses, both) is late by ``ms`` +- jitter."""
        return self.add("link", "delay", delay_ms=ms, jitter_ms=jitter_ms, **fields)

    def duplicate(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The next ``n`` units arrive twice."""
        return self.add("link", "duplicate", count=n, **fields)

    def reorder(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The next ``n`` responses are held back so later ones overtake them."""
        return self.add("link", "reorder", count=n, **fields)

    def corrupt(self, n: int | None = 1, nbytes: int = 1, **fields: Any) -> dict[str, Any]:
        """``nbytes`` bytes of each of the next ``n`` units are changed."""
        return self.add("link", "corrupt", count=n, nbytes=nbytes, **fields)

    def truncate(self, n: int | None = 1, nbytes: int = 1, **fields: Any) -> dict[str, Any]:
        """The next ``n`` units lose their last ``nbytes`` bytes."""
        return self.add("link", "truncate", count=n, nbytes=nbytes, **fields)

    def deaf(self, seconds: float, **fields: Any) -> dict[str, Any]:
        """The board hears nothing for ``seconds`` from the next request on."""
        return self.add("link", "deaf", count=1, duration_s=seconds, **fields)

    def noise(self, probability: float, **fields: Any) -> dict[str, Any]:
        """Bit errors on the serial line: each byte hit with ``probability``."""
        return self.add("link", "noise", medium="serial", probability=probability, **fields)

    def flash_write_error(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The next ``n`` flash writes (in ``partition``, or the range) fail with -EIO."""
        return self.add("flash", "write_error", count=n, **fields)

    def flash_erase_error(self, n: int | None = 1, **fields: Any) -> dict[str, Any]:
        """The next ``n`` flash erases (in ``partition``, or the range) fail with -EIO."""
        return self.add("flash", "erase_error", count=n, **fields)

    def slow_flash(self, extra_ms: float, **fields: Any) -> dict[str, Any]:
        """Every operation in the range takes ``extra_ms`` longer."""
        return self.add("flash", "slow", extra_ms=extra_ms, **fields)

    def worn_out(self, **fields: Any) -> dict[str, Any]:
        """Sectors in the range no longer erase."""
        return self.add("flash", "worn_out", **fields)

    def bit_flip(self, flips: int = 1, **fields: Any) -> dict[str, Any]:
        """Invert ``flips`` bits at seeded random places in the range, now."""
        return self.add("flash", "bit_flip", flips=flips, **fields)

    def crash_next_boot(self) -> dict[str, Any]:
        """The application of the next boot crashes right after starting."""
        return self.add("app", "crash")

    def hang_next_boot(self) -> dict[str, Any]:
        """The application of the next boot hangs (the watchdog resets the board)."""
        return self.add("app", "hang")

    def never_confirm(self) -> dict[str, Any]:
        """The application of the next boot does not confirm itself."""
        return self.add("app", "no_confirm")

    def brownout(self, seed: int = 0) -> dict[str, Any]:
        """At the next reset the power sags while MCUboot works, then comes back."""
        return self.add("app", "brownout", seed=seed)


def follow(call: Call[Any], since: int = 0, timeout_s: float = 10.0,
           poll_s: float = 0.01) -> Iterator[dict[str, Any]]:
    """Events after ``since`` as the API shows them, waiting up to ``timeout_s`` for each next
    one (the iterator ends when none comes in time)."""
    deadline = time.monotonic() + timeout_s
    while True:
        events = call(functools.partial(_events_after, since=since))
        if events:
            yield from events
            since = events[-1]["seq"]
            deadline = time.monotonic() + timeout_s
        elif time.monotonic() > deadline:
            return
        else:
            time.sleep(poll_s)


def _events_after(plane: ControlPlane, since: int) -> list[dict[str, Any]]:
    return [event.to_json() for event in plane.events(since)]
