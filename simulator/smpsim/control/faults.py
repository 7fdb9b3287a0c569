"""Faults a user can inject, as the control plane takes them (JSON, or TOML for ``--faults``),
checked field by field before anything changes on the board.

Three families:

* ``link``: what happens to SMP traffic between a client and the board
  (:mod:`smpsim.transports.link_faults`);
* ``flash``: the flash driver failing a write or an erase, slow sectors, a worn-out sector that no
  longer erases, bits flipped in a range (an image turns invalid and MCUboot must notice);
* ``app``: the next boot's application crashes, hangs (the watchdog resets it) or never
  confirms; a brown-out at the next reset (power drops while MCUboot works, then comes back).

Every fault draws from its own ``seed``, so a run with the same faults replays exactly.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from smpsim.device.flash import DriverError, NorFlash
from smpsim.transports.link_faults import DIRECTIONS, KINDS, MEDIA, LinkFault

FLASH_KINDS = ("write_error", "erase_error", "slow", "worn_out", "bit_flip")
APP_KINDS = ("crash", "hang", "no_confirm", "brownout")
FAMILIES = {"link": KINDS, "flash": FLASH_KINDS, "app": APP_KINDS}


class FaultError(ValueError):
    """A fault description that cannot be taken; the message names the field."""


@dataclass
class FlashFault:
    """One flash fault over ``[offset, offset + length)`` of the flash."""

    kind: str
    offset: int
    length: int
    count: int | None = None
    """Errors: fail the next ``count`` operations touching the range; ``None``: every one."""
    probability: float = 1.0
    extra_ms: float = 0.0
    """``slow``: added to each operation touching the range."""
    flips: int = 1
    """``bit_flip``: bits inverted, at seeded random places in the range."""
    seed: int = 0
    id: str = ""
    hits: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def touches(self, offset: int, length: int) -> bool:
        """Whether an operation on ``[offset, offset + length)`` reaches the range."""
        return offset < self.offset + self.length and self.offset < offset + length


@dataclass
class AppFault:
    """What the application (or the power at the next reset) does wrong, once."""

    kind: str
    seed: int = 0
    id: str = ""
    hits: int = 0


Fault = LinkFault | FlashFault | AppFault


class FlashFaults:
    """The flash faults of one board: the hook its flash consults before every operation."""

    def __init__(self, fired: Any) -> None:
        self.faults: list[FlashFault] = []
        self._fired = fired

    def before(self, kind: str, offset: int, length: int) -> float:
        """Fail the operation (``DriverError``) or return the extra seconds it takes."""
        extra = 0.0
        for fault in list(self.faults):
            if not fault.touches(offset, length):
                continue
            if fault.kind == "slow":
                extra += fault.extra_ms / 1000
                continue
            wanted = {"write_error": "write", "erase_error": "erase", "worn_out": "erase"}
            if wanted.get(fault.kind) != kind:
                continue
            if fault.count is not None and fault.hits >= fault.count:
                continue
            if fault.probability < 1.0 and fault.rng.random() >= fault.probability:
                continue
            fault.hits += 1
            self._fired(fault, f"{kind} at {offset:#x}+{length:#x} failed")
            if fault.count is not None and fault.hits >= fault.count:
                self.faults.remove(fault)
            raise DriverError(f"injected {fault.kind}: {kind} at {offset:#x} failed (-EIO)")
        return extra


def flip_bits(flash: NorFlash, fault: FlashFault) -> list[int]:
    """Carry out a ``bit_flip`` fault now; returns the bit positions inverted."""
    bits = sorted(fault.rng.sample(range(fault.offset * 8, (fault.offset + fault.length) * 8),
                                   min(fault.flips, fault.length * 8)))
    flash.flip_bits(bits)
    fault.hits = len(bits)
    return bits


# -- parsing ----------------------------------------------------------------------------------

def parse(spec: Any, areas: dict[str, tuple[int, int]], flash_size: int) -> Fault:
    """A fault from its JSON (or TOML) description; :class:`FaultError` names what is wrong.

    ``areas`` maps partition names to (offset, size), for flash faults given a ``partition``.
    """
    if not isinstance(spec, dict):
        raise FaultError("a fault is an object with 'family' and 'kind'")
    fields = dict(spec)
    family = _choice(fields, "family", tuple(FAMILIES), required=True)
    kind = _choice(fields, "kind", FAMILIES[family], required=True)
    seed = _int(fields, "seed", 0)
    if family == "link":
        fault: Fault = _link(fields, kind, seed)
    elif family == "flash":
        fault = _flash(fields, kind, seed, areas, flash_size)
    else:
        fault = AppFault(kind, seed)
    if fields:
        raise FaultError(f"unknown field {sorted(fields)[0]!r} for a {family} fault")
    return fault


def _link(fields: dict[str, Any], kind: str, seed: int) -> LinkFault:
    fault = LinkFault(
        kind, medium=_choice(fields, "medium", MEDIA) or "all",
        direction=_choice(fields, "direction", DIRECTIONS) or "both",
        probability=_number(fields, "probability", 1.0, 0.0, 1.0),
        count=_count(fields), delay_ms=_number(fields, "delay_ms", 0.0, 0.0, 600_000.0),
        jitter_ms=_number(fields, "jitter_ms", 0.0, 0.0, 600_000.0),
        duration_s=_number(fields, "duration_s", 0.0, 0.0, 86_400.0),
        nbytes=_int(fields, "nbytes", 1, 1, 65_535), seed=seed)
    if kind == "deaf" and fault.duration_s <= 0:
        raise FaultError("duration_s: a deaf fault needs a duration above 0")
    if kind == "noise" and fault.medium not in ("serial", "all"):
        raise FaultError("medium: noise is bit errors on a serial line ('serial' or 'all')")
    if kind == "delay" and fault.delay_ms <= 0 and fault.jitter_ms <= 0:
        raise FaultError("delay_ms: a delay fault needs delay_ms or jitter_ms above 0")
    return fault


def _flash(fields: dict[str, Any], kind: str, seed: int,
           areas: dict[str, tuple[int, int]], flash_size: int) -> FlashFault:
    partition = fields.pop("partition", None)
    if partition is not None:
        if partition not in areas:
            raise FaultError(f"partition: no partition {partition!r}; "
                             f"known: {', '.join(areas)}")
        base, size = areas[partition]
    else:
        base, size = 0, flash_size
    offset = _int(fields, "offset", 0, 0, size - 1)
    length = _int(fields, "length", size - offset, 1, size - offset)
    fault = FlashFault(kind, base + offset, length, count=_count(fields),
                       probability=_number(fields, "probability", 1.0, 0.0, 1.0),
                       extra_ms=_number(fields, "extra_ms", 0.0, 0.0, 600_000.0),
                       flips=_int(fields, "flips", 1, 1, 1_000_000), seed=seed)
    if kind == "slow" and fault.extra_ms <= 0:
        raise FaultError("extra_ms: a slow fault needs extra_ms above 0")
    return fault


def _choice(fields: dict[str, Any], key: str, allowed: tuple[str, ...],
            required: bool = False) -> str:
    value = fields.pop(key, None)
    if value is None:
        if required:
            raise FaultError(f"{key}: missing; one of {', '.join(allowed)}")
        return ""
    if value not in allowed:
        raise FaultError(f"{key}: {value!r} is not one of {', '.join(allowed)}")
    return str(value)


def _number(fields: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    value = fields.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not low <= value <= high:  # NaN fails the comparison too
        raise FaultError(f"{key}: {value!r} is not a number from {low:g} to {high:g}")
    return float(value)


def _int(fields: dict[str, Any], key: str, default: int, low: int = 0,
         high: int = 2**32 - 1) -> int:
    value = fields.pop(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FaultError(f"{key}: {value!r} is not an integer from {low} to {high}")
    return value


def _count(fields: dict[str, Any]) -> int | None:
    if fields.get("count") is None:
        fields.pop("count", None)
        return None
    return _int(fields, "count", 1, 1, 2**31)
