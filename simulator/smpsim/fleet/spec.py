"""``--board PROFILE:N[@FIRST]`` specs, and the plan they make: every board's id, profile,
identity and flash file, in a stable order (the same specs give the same boards again)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from smpsim.config import Profile, load_profile
from smpsim.errors import ConfigError
from smpsim.fleet.identity import Identity, identity_of, personalise

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class BoardSpec:
    """``N`` boards of one profile."""

    profile: str
    """Built-in profile name or profile file, as ``smpsim run --profile`` takes it."""
    count: int
    """How many."""
    first: str | None = None
    """Where this spec's boards start (an address, or a port with ``--base-port``); ``None``:
    right after the previous spec's."""


def parse_spec(text: str) -> BoardSpec:
    """``nrf52840dk:100``, ``my-board.toml:5``, ``stm32f4:20@127.0.2.1``."""
    body, at, first = text.partition("@")
    profile, sep, count = body.rpartition(":")
    if not sep or not profile or (at and not first):
        raise ConfigError(f"bad board spec {text!r}: expected PROFILE:N, e.g. nrf52840dk:100 "
                          "(optionally @FIRST-ADDRESS or @FIRST-PORT)")
    try:
        number = int(count)
    except ValueError:
        raise ConfigError(f"bad board count in {text!r}: {count!r} is not a whole number") \
            from None
    if number < 1:
        raise ConfigError(f"bad board count in {text!r}: at least 1 board")
    return BoardSpec(profile, number, first or None)


@dataclass(frozen=True)
class PlannedBoard:
    """One board of the fleet, before it starts."""

    identity: Identity
    """Its id, serial number and names."""
    profile_name: str
    """The profile it is built from (``nrf52840dk``)."""
    profile: Profile
    """That profile, personalised with the identity."""
    flash: Path
    """Its flash file (``<flash dir>/<id>.bin``)."""
    spec: int
    """Index of the spec it comes from."""

    @property
    def board_id(self) -> str:
        """``nrf52840dk-0001``."""
        return self.identity.board_id


def plan(specs: list[BoardSpec], flash_dir: Path) -> list[PlannedBoard]:
    """Every board of ``specs``: boards of one profile are numbered from 1 across the specs,
    so ``nrf52840dk-0001`` is the same board (and flash file) at every start."""
    profiles: dict[str, Profile] = {}
    numbers: dict[str, int] = {}
    boards = []
    for index, spec in enumerate(specs):
        profile = profiles.get(spec.profile)
        if profile is None:
            profile = profiles[spec.profile] = load_profile(spec.profile)
        if not _ID.match(profile.name):
            raise ConfigError(f"profile name {profile.name!r} cannot name board files: use "
                              "letters, digits, '.', '_' and '-'")
        for _ in range(spec.count):
            number = numbers[profile.name] = numbers.get(profile.name, 0) + 1
            board_id = f"{profile.name}-{number:04d}"
            identity = identity_of(board_id, profile)
            boards.append(PlannedBoard(identity, profile.name, personalise(profile, identity),
                                       flash_dir / f"{board_id}.bin", index))
    return boards
