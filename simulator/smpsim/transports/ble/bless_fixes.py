"""The workarounds smpsim needs in bless 0.3.0 (pinned: they touch its internals), in one place.

bless's BlueZ backend lacks three things a GATT server for SMP needs, and starts with one wrong
property value. The first two were shown failing without their fix under the BlueZoo mock; each
item says what it means on real BlueZ:

* **``Notifying`` is true from the start**: ``BlueZGattCharacteristic.__init__`` sets
  ``_notifying`` for every notify characteristic, so a BlueZ that believes it makes the central's
  ``StartNotify`` take the ``AcquireNotify`` path, which bless does not have. :func:`prepare`
  clears it; BlueZ then sends a notification for every ``Value`` change. (Real BlueZ sends
  notifications on a ``Value`` change after the central's CCC write either way.)
* **No ``AcquireWrite``**: smpclient (and so smpmgr) asks BlueZ for the MTU through
  ``AcquireWrite`` on the write-without-response characteristic; under BlueZoo that call reaches
  the server. The method added here lets the endpoint answer with a socket and the connection's
  MTU. Returning a file descriptor needs bless's bus opened with ``negotiate_unix_fd``. (On real
  BlueZ the central's own bluetoothd answers it; a server sees it only if it asks to.)
* **``WriteValue`` drops its options**: BlueZ passes ``mtu`` (the connection's ATT MTU) and
  ``device`` with every write; bless 0.3.0 forwards only the value. The replacement hands both to
  the endpoint, which needs the MTU to size its notifications on a real adapter, where
  ``AcquireWrite`` never reaches a server.
* **No ``Confirm``**: BlueZoo calls it after each value it relays, and logs an error traceback
  when the method is missing. A no-op keeps its log clean. (Real BlueZ calls it only for
  indications, which SMP does not use.)

One more is not a patch: bless leaves the adapter as it finds it, and BlueZ (like BlueZoo)
reports an LE advertiser as discoverable only while its adapter is. The endpoint makes the
adapter discoverable with no timeout on start and restores it on exit
(:meth:`smpsim.transports.ble.bluez.AdapterControl.make_discoverable`).

And one in dbus_next 0.2.3, which bless uses: ``MessageBus.disconnect()`` never closes the
socket (the garbage collector does, with a ``ResourceWarning``); :func:`close_bus` does.

The methods are added to bless's class once (D-Bus methods are collected per class); each
characteristic that wants them names its :class:`Handler` in ``smpsim_handler``. A characteristic
without one (another bless server in the same process) behaves as stock bless does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from typing import Any, Protocol

from bless.backends.bluezdbus import server as bless_server
from bless.backends.bluezdbus.dbus.characteristic import BlueZGattCharacteristic
from dbus_next.aio.message_bus import MessageBus
from dbus_next.errors import DBusError
from dbus_next.service import method

_ATTR = "smpsim_handler"


class Handler(Protocol):
    """What the patched characteristic calls."""

    def acquire_write(self, options: dict[str, Any]) -> tuple[int, int]:
        """``AcquireWrite``: (file descriptor for the client's writes, MTU)."""

    def write(self, value: bytes, options: dict[str, Any]) -> None:
        """``WriteValue`` with BlueZ's options (``Variant`` values)."""


def _handler(char: BlueZGattCharacteristic) -> Handler | None:
    handler: Handler | None = getattr(char, _ATTR, None)
    return handler


def _acquire_write(self: BlueZGattCharacteristic, options: dict[str, Any]) -> list[int]:
    handler = _handler(self)
    if handler is None:
        raise DBusError(  # type: ignore[no-untyped-call]
            "org.bluez.Error.NotSupported", "AcquireWrite is not supported")
    fd, mtu = handler.acquire_write(options)
    return [fd, mtu]


def _write_value(self: BlueZGattCharacteristic, value: bytes, options: dict[str, Any]) -> None:
    handler = _handler(self)
    if handler is None:
        _stock_write_value(self, value, options)
        return
    handler.write(bytes(value), options)


def _confirm(self: BlueZGattCharacteristic) -> None:
    pass


def _stock_write_value(char: BlueZGattCharacteristic, value: bytes,
                       options: dict[str, Any]) -> None:
    write = char._service.app.Write
    if write is None:
        raise NotImplementedError
    write(char, value)


def _dbus_method(fn: Any, name: str, annotations: dict[str, str]) -> Any:
    # dbus_next reads each argument's D-Bus signature from its annotation; set them here rather
    # than as string annotations in the source, which the type checkers would try to parse.
    fn.__annotations__ = annotations
    return method(name=name)(fn)


@functools.cache
def patch() -> None:
    """Apply the class-level workarounds (once per process)."""
    module: Any = bless_server
    module.MessageBus = functools.partial(MessageBus, negotiate_unix_fd=True)
    char: Any = BlueZGattCharacteristic
    char.AcquireWrite = _dbus_method(_acquire_write, "AcquireWrite",
                                     {"options": "a{sv}", "return": "hq"})
    char.WriteValue = _dbus_method(_write_value, "WriteValue",
                                   {"value": "ay", "options": "a{sv}"})
    char.Confirm = _dbus_method(_confirm, "Confirm", {})


def prepare(char: BlueZGattCharacteristic, handler: Handler) -> None:
    """Make one characteristic serve ``handler`` (call before the app is registered)."""
    char._notifying = False  # BlueZ then uses StartNotify and relays Value changes
    setattr(char, _ATTR, handler)


async def close_bus(bus: MessageBus, timeout_s: float = 2.0) -> None:
    """Disconnect ``bus`` and close its socket (also when the bus has gone away)."""
    with contextlib.suppress(Exception):  # already disconnected: nothing to say goodbye to
        bus.disconnect()  # type: ignore[no-untyped-call]
    with contextlib.suppress(Exception):
        await asyncio.wait_for(
            bus.wait_for_disconnect(), timeout_s)  # type: ignore[no-untyped-call]
    bus._sock.close()
