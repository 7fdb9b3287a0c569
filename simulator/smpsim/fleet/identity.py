"""A fleet board's identity: what tells it apart from its siblings, given to it as data.

The board learns it the way firmware does, from its build and its chip: a hostname (what os
info ``n`` reports: Zephyr's ``net_hostname_get()`` comes before the Bluetooth name there), a
Bluetooth name with the board's id as suffix, and a serial number (a 64-bit chip id, in hex
as hwinfo gives it) as the default of the application's settings key ``serial``, the default
board's read-only ``id/serial``. The device itself only ever sees a profile.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

from smpsim.config import Profile, SettingsHandler


@dataclass(frozen=True)
class Identity:
    """Who one board of a fleet is."""

    board_id: str
    """Stable name in the fleet (``nrf52840dk-0001``); also names its flash file."""
    serial_number: str
    """16 hex digits derived from the id: the same board keeps it across restarts."""
    hostname: str
    """os info ``n``."""
    ble_name: str
    """Advertised Bluetooth name (``BT_DEVICE_NAME`` with the id as suffix)."""


def identity_of(board_id: str, profile: Profile) -> Identity:
    """The identity of ``board_id``, a board built as ``profile``."""
    serial = hashlib.blake2b(board_id.encode(), digest_size=8).hexdigest().upper()
    return Identity(board_id, serial, board_id, f"{profile.firmware.ble.name}-{board_id}")


def personalise(profile: Profile, identity: Identity) -> Profile:
    """``profile`` as built for this one board: its names and its serial number."""
    fw = profile.firmware
    handlers = tuple(_with_serial(h, identity.serial_number) for h in fw.settings.handlers)
    firmware = dataclasses.replace(
        fw, node_name=identity.hostname,
        ble=dataclasses.replace(fw.ble, name=identity.ble_name),
        settings=dataclasses.replace(fw.settings, handlers=handlers))
    return dataclasses.replace(profile, firmware=firmware)


def _with_serial(handler: SettingsHandler, serial: str) -> SettingsHandler:
    if not any(key.name == "serial" for key in handler.keys):
        return handler
    keys = tuple(dataclasses.replace(key, default=serial) if key.name == "serial" else key
                 for key in handler.keys)
    return dataclasses.replace(handler, keys=keys)
