"""Faults of the link between a client and the board: what a flaky radio, a lossy network or a
noisy cable does to SMP traffic.

Each :class:`LinkFault` acts on the requests or responses of one medium (``udp``, ``serial``,
``ble``) or of all, either on the next ``count`` units or on each with a ``probability``, drawing
from its own seeded random generator, so a run replays exactly. The runner asks
:meth:`LinkFaults.inbound` what becomes of each request unit and :meth:`LinkFaults.outbound` of
each response frame: nothing (dropped), the unit itself, a changed copy, two copies, and when
(a delay in seconds of host time: the link is not the chip, the time scale does not apply).
The serial line asks :meth:`LinkFaults.noise` to flip bits of the raw bytes on the wire, so
Zephyr's CRC check drops the frame, as on a noisy cable.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from smpsim.transports.origin import Origin

KINDS = ("drop_requests", "drop_responses", "delay", "duplicate", "reorder", "corrupt",
         "truncate", "deaf", "noise")
"""Link fault kinds: ``deaf`` stops the board hearing anything for ``duration_s``; ``noise`` is
bit errors on a serial line's bytes (``probability`` per byte); ``delay``, ``duplicate``,
``corrupt`` and ``truncate`` act on ``direction`` (``requests``, ``responses`` or ``both``)."""
MEDIA = ("all", "udp", "serial", "ble")
DIRECTIONS = ("requests", "responses", "both")
REORDER_HOLD_MS = 500.0
"""How long ``reorder`` holds a response back when its ``delay_ms`` is 0."""


@dataclass
class LinkFault:
    """One link fault; its fields are the control plane's JSON keys."""

    kind: str
    medium: str = "all"
    direction: str = "both"
    probability: float = 1.0
    """Chance each matching unit is hit (``noise``: each byte)."""
    count: int | None = None
    """Hit the next ``count`` matching units, then end; ``None``: until cleared."""
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    duration_s: float = 0.0
    """``deaf``: how long the board hears nothing."""
    nbytes: int = 1
    """``corrupt``: bytes changed per unit; ``truncate``: bytes cut off the end."""
    seed: int = 0
    id: str = ""
    hits: int = 0
    """Units this fault acted on so far."""
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def applies(self, medium: str, direction: str) -> bool:
        """Whether a unit of ``medium`` going ``direction`` is this fault's to consider."""
        if self.medium not in ("all", medium):
            return False
        if self.kind == "drop_requests":
            return direction == "requests"
        if self.kind in ("drop_responses", "reorder"):
            return direction == "responses"
        return self.direction in ("both", direction)

    def draw(self) -> bool:
        """Whether it strikes this time (and counts the hit)."""
        if self.count is not None and self.hits >= self.count:
            return False
        if self.probability < 1.0 and self.rng.random() >= self.probability:
            return False
        self.hits += 1
        return True

    @property
    def spent(self) -> bool:
        """A ``count`` fault that has struck its last."""
        return self.count is not None and self.hits >= self.count


Delivery = list[tuple[float, bytes]]
"""What becomes of a unit: (delay in host seconds, bytes) per copy delivered."""
Fired = Callable[[LinkFault, str], None]


class LinkFaults:
    """The active link faults of one board, in the order they were added."""

    def __init__(self, fired: Fired | None = None) -> None:
        self.faults: list[LinkFault] = []
        self._fired = fired
        self._deaf_until = 0.0

    def add(self, fault: LinkFault) -> None:
        """Arm ``fault`` (a ``deaf`` fault starts now)."""
        self.faults.append(fault)

    def remove(self, fault_id: str) -> bool:
        """Clear one fault; False if there is none with that id."""
        before = len(self.faults)
        self.faults = [f for f in self.faults if f.id != fault_id]
        return len(self.faults) != before

    def _strike(self, fault: LinkFault, what: str) -> None:
        if self._fired is not None:
            self._fired(fault, what)
        if fault.spent:
            self.faults.remove(fault)

    def inbound(self, unit: bytes, origin: Origin, now: float) -> Delivery:
        """What the board receives of a request ``unit`` (``now``: host seconds)."""
        return self._through(unit, origin.medium, "requests", now)

    def outbound(self, frame: bytes, origin: Origin, now: float) -> Delivery:
        """What the client receives of a response ``frame``."""
        return self._through(frame, origin.medium, "responses", now)

    def _through(self, data: bytes, medium: str, direction: str, now: float) -> Delivery:
        if direction == "requests" and now < self._deaf_until:
            return []
        out: Delivery = [(0.0, data)]
        for fault in list(self.faults):
            if fault.kind == "noise" or not fault.applies(medium, direction):
                continue
            if fault.kind == "deaf":
                if direction == "requests" and fault.draw():
                    self._deaf_until = now + fault.duration_s
                    self._strike(fault, f"deaf for {fault.duration_s:g} s")
                    return []
                continue
            if not out or not fault.draw():
                continue
            out = self._apply(fault, out)
            self._strike(fault, f"{fault.kind} ({direction})")
        return out

    def _apply(self, fault: LinkFault, out: Delivery) -> Delivery:
        rng = fault.rng
        if fault.kind in ("drop_requests", "drop_responses"):
            return []
        if fault.kind == "delay":
            extra = (fault.delay_ms + rng.uniform(-fault.jitter_ms, fault.jitter_ms)) / 1000
            return [(max(0.0, when + extra), data) for when, data in out]
        if fault.kind == "duplicate":
            return out + out
        if fault.kind == "reorder":
            # Held back, so the responses that follow within the hold overtake it.
            hold = (fault.delay_ms or REORDER_HOLD_MS) / 1000
            return [(when + hold, data) for when, data in out]
        if fault.kind == "corrupt":
            return [(when, _corrupt(data, fault.nbytes, rng)) for when, data in out]
        if fault.kind == "truncate":
            return [(when, data[:max(0, len(data) - fault.nbytes)]) for when, data in out]
        return out

    def noise(self, data: bytes, medium: str, direction: str) -> bytes:
        """``data`` on the wire of ``medium`` going ``direction`` with the noise faults' bit
        errors (each byte hit with the fault's probability gets one bit inverted)."""
        faults = [f for f in self.faults if f.kind == "noise" and f.applies(medium, direction)]
        if not faults:
            return data
        out = bytearray(data)
        for fault in faults:
            flipped = 0
            for index in range(len(out)):
                if fault.rng.random() < fault.probability:
                    out[index] ^= 1 << fault.rng.randrange(8)
                    flipped += 1
            if flipped:
                fault.hits += flipped
                if self._fired is not None:
                    self._fired(fault, f"{flipped} bit errors ({direction})")
        return bytes(out)


def _corrupt(data: bytes, nbytes: int, rng: random.Random) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(max(1, nbytes)):
        index = rng.randrange(len(out))
        out[index] ^= rng.randrange(1, 256)
    return bytes(out)
