"""BlueZoo 1.0.2 (the BlueZ D-Bus mock) with the fixes the BLE tests need; run like ``bluezoo``.

    BLUEZOO_PERIPHERAL_ONLY=hci0 python tests/ble/bluezoo_ci.py -q --auto-enable \\
        --scan-interval 0.1 -a 00:00:00:00:00:01 -a 00:00:00:00:00:02

(bluezoo's options; ``--scan-interval`` here also takes fractions of a second.)

Each patch makes the mock behave as real BlueZ does where the tests depend on it; they target
bluezoo 1.0.2's internals, which is why it is pinned:

1. a known device is re-announced (``PropertiesChanged(RSSI)``) on every scan pass, as
   BlueZ does for every advertisement it hears; bleak registers its detection callback after
   ``StartDiscovery`` and would otherwise miss a device reported once or known from before.
2. ``BLUEZOO_PERIPHERAL_ONLY=hci0`` makes hci0 report ``Roles=["peripheral"]``, so
   bleak's default adapter (smpclient and smpmgr take no adapter argument) is the central.
3. a disconnect removes the GATT objects exported under the central's device, or the
   next ``Connect()`` fails re-exporting them (EEXIST).
4. a disconnect reaches both ends of the link. BlueZoo keeps two device objects per link
   (the central's view of the peripheral and the peripheral's view of the central) and a
   ``Disconnect()`` clears only one of them; on BlueZ, a peripheral that calls
   ``Device1.Disconnect()`` on its central drops the LE link, and the central sees
   ``Connected=False``. smpsim does exactly that when the board resets.
5. ``--scan-interval`` takes fractions of a second: with patch 1 a report bleak missed
   costs one scan pass, and at bluezoo's 1 s minimum every reconnect after a reset paid it.

This file imports GPL-2.0 code, so it stays with the tests and is not shipped in smpsim.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from typing import Any

from bluezoo import bluezoo as bz
from bluezoo.adapter import Adapter
from bluezoo.device import Device
from bluezoo.utils import BluetoothAddress

_orig_add_device = Adapter.add_device


async def _add_device(self: Any, device: Any) -> None:
    device.attach_to_adapter(self)
    path = device.get_object_path()
    if path in self.devices:
        known = self.devices[path]
        await known.properties_sync(device)
        known.properties_changed.emit(("org.bluez.Device1", {"RSSI": ("n", known.rssi)}, []))
        return
    await _orig_add_device(self, device)


Adapter.add_device = _add_device

_PERIPHERAL_ONLY = {a.strip() for a in os.environ.get("BLUEZOO_PERIPHERAL_ONLY", "").split(",")
                    if a.strip()}
_roles = Adapter.__dict__["Roles"]
_orig_roles = _roles.property_getter
_roles.property_getter = (lambda self: ["peripheral"] if f"hci{self.id}" in _PERIPHERAL_ONLY
                          else _orig_roles(self))

_orig_disconnect = Device.disconnect


async def _disconnect(self: Any, uuid: str | None = None) -> None:
    await _orig_disconnect(self, uuid)
    for link in reversed(list(self.services.values())):
        subscription = getattr(link, "client_props_changed_subscription", None)
        if subscription is not None:
            subscription.unsubscribe()
        for name in ("f_read", "f_write"):
            if getattr(link, name, None) is not None:
                getattr(link, name).close()
                setattr(link, name, None)
        self.peer_adapter.mock.remove_object(link)
    self.services.clear()
    if self.services_resolved:
        await self.ServicesResolved.set_async(False)
        if self.peer is not None:
            await self.peer.ServicesResolved.set_async(False)
    # The other end of the link: the peer adapter's device object for our adapter.
    if self.adapter is not None:
        other_path = (f"{self.peer_adapter.get_object_path()}/"
                      f"dev_{self.adapter.address.replace(':', '_')}")
        other = self.peer_adapter.devices.get(other_path)
        if other is not None and other is not self and other.connected:
            await other.disconnect()


Device.disconnect = _disconnect



def main() -> None:
    """bluezoo's ``main`` (1.0.2), with a ``float`` scan interval."""
    parser = argparse.ArgumentParser(description="BlueZoo for smpsim's tests")
    parser.add_argument("-v", "--verbose", action="count", default=0)
    parser.add_argument("-q", "--quiet", action="count", default=0)
    parser.add_argument("--auto-enable", action="store_true")
    parser.add_argument("--scan-interval", type=float, default=10.0)
    parser.add_argument("-a", "--adapter", dest="adapters", action="append",
                        type=BluetoothAddress, default=[])
    args = parser.parse_args()
    level = logging.INFO + 10 * (args.quiet - args.verbose)
    logging.basicConfig(level=max(logging.DEBUG, min(logging.CRITICAL, level)))
    loop = asyncio.new_event_loop()
    loop.run_until_complete(bz.startup(bus="system", adapters=args.adapters,
                                       auto_enable=args.auto_enable,
                                       scan_interval=args.scan_interval))
    loop.run_forever()


if __name__ == "__main__":
    main()
