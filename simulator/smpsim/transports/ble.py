"""SMP over Bluetooth LE: smp_svr's GATT service on a BlueZ adapter, through bless.

The board is a peripheral: it advertises the profile's name (``firmware.ble.name``) with the SMP
service ``8d53dc1d-1db7-4cd3-868b-8a527460aa84``, whose one characteristic
``da2e7828-fbce-4e01-ae9e-261174997c48`` takes requests as writes without response and sends
responses as notifications, as Zephyr's ``smp_bt.c`` does:

* Requests are reassembled from the writes by the SMP header's length
  (:mod:`smpsim.mcumgr.smp_reassembly`), or, with ``reassembly = false``, each write is a unit.
  A write longer than MTU - 3 cannot happen on a real link and is dropped.
* Responses are cut into notifications of at most MTU - 3 bytes, sent in order. They are sent
  only while a central is subscribed, and only on the connection that asked (a response to a
  central that has gone is dropped, as ``smp_bt_tx_pkt`` drops it).
* The MTU of a connection is the smaller of the profile's ``mtu`` and what the client says:
  BlueZ's ``mtu`` option with each write, or the one in ``AcquireWrite`` (which smpclient and
  smpmgr call to learn the MTU, and which BlueZoo passes to the server).
* **Reset**: when the device goes down (os reset, a crash, the watchdog, a power cut) the
  board's radio goes with it. The endpoint unregisters the advertisement and the GATT
  application, so the board is neither seen nor served while it boots, and disconnects every
  connected central from the adapter side (``Device1.Disconnect`` on the adapter's device
  objects: on BlueZ this drops the LE link, and the central sees ``Connected`` turn false, as
  when a board resets). When the board is up again both are registered again, and it can be
  found and connected to. (A real central notices a dead peripheral by its supervision timeout:
  0.42 s with smp_svr's conn-param control; the drop here is at once.)
* **Link model**: at a time scale above 0, writes and notifications travel at the speed of the
  profile's link (:class:`LinkModel`): connection events every ``conn_interval_ms``, each with
  room for ``packets_per_interval`` link-layer packets of ``data_length`` bytes per direction.
  A write reaches the board at the connection event that carries its last packet; a response
  leaves in the events after the board has it ready. At time scale 0 everything is instant.

Not modelled: the connection parameter update itself (the interval is the one SMP traffic gets
once ``MCUMGR_TRANSPORT_BT_CONN_PARAM_CONTROL`` has asked for it), pairing and encrypted
characteristics (smp_svr's are open), more than one central (smp_svr allows one connection).

The bless workarounds are in :mod:`smpsim.transports.ble_bless`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import os
import socket
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from bless.backends.attribute import GATTAttributePermissions
from bless.backends.bluezdbus.server import BlessServerBlueZDBus
from bless.backends.characteristic import GATTCharacteristicProperties
from dbus_next.aio.message_bus import MessageBus
from dbus_next.constants import BusType, MessageType
from dbus_next.errors import DBusError
from dbus_next.message import Message
from dbus_next.signature import Variant

from smpsim.config import Ble
from smpsim.errors import ConfigError
from smpsim.mcumgr.smp_reassembly import Reassembler
from smpsim.transports import ble_bless
from smpsim.transports.runner import Runner

log = logging.getLogger(__name__)

SMP_SERVICE_UUID = "8d53dc1d-1db7-4cd3-868b-8a527460aa84"
SMP_CHARACTERISTIC_UUID = "da2e7828-fbce-4e01-ae9e-261174997c48"
BLUEZ = "org.bluez"
ADAPTER = "org.bluez.Adapter1"
DEVICE = "org.bluez.Device1"
PROPERTIES = "org.freedesktop.DBus.Properties"
ATT_HEADER = 3
"""Opcode and handle in front of a written or notified value."""
L2CAP_HEADER = 4
ATT_MIN_MTU = 23
CALL_TIMEOUT_S = 5.0


class LinkModel:
    """When bytes get across a BLE connection, in host seconds.

    Connection events come every ``interval`` seconds (a grid from time 0); in each, either side
    sends up to ``per_event`` link-layer packets of up to ``data_length`` bytes. A PDU handed to
    the link at ``now`` starts in the first event after ``now`` (so an answer goes out one event
    after its request came in, at the earliest), and waits for PDUs booked before it in its
    direction. The directions are booked separately.
    """

    def __init__(self, ble: Ble, scale: float) -> None:
        self.interval = ble.conn_interval_ms / 1000 * scale
        self.per_event = ble.packets_per_interval
        self.data_length = ble.data_length
        self._booked = {"rx": (-1, 0), "tx": (-1, 0)}

    def packets(self, value_len: int) -> int:
        """Link-layer packets for one write or notification of ``value_len`` bytes."""
        return math.ceil((value_len + ATT_HEADER + L2CAP_HEADER) / self.data_length)

    def book(self, direction: str, now: float, value_len: int) -> float:
        """Book a PDU sent at ``now`` in direction ``rx`` (to the board) or ``tx``; returns the
        time its last packet is across."""
        event, used = self._booked[direction]
        first = math.floor(now / self.interval) + 1
        if first > event:
            event, used = first, 0
        left = self.packets(value_len)
        while True:
            take = min(self.per_event - used, left)
            used += take
            left -= take
            if not left:
                break
            event, used = event + 1, 0
        self._booked[direction] = (event, used)
        return event * self.interval

    def reset(self) -> None:
        """A new connection: nothing booked."""
        self._booked = {"rx": (-1, 0), "tx": (-1, 0)}


async def connect_system_bus() -> MessageBus:
    """The D-Bus system bus (``DBUS_SYSTEM_BUS_ADDRESS`` or the standard socket) with BlueZ on
    it; a :class:`ConfigError` says what is missing."""
    where = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/run/dbus/system_bus_socket")
    try:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    except Exception as exc:
        raise ConfigError(
            f"BLE needs BlueZ on the D-Bus system bus, and there is no system bus at {where} "
            f"({exc or type(exc).__name__}); is dbus running?") from None
    reply = await bus.call(Message(
        destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
        interface="org.freedesktop.DBus", member="NameHasOwner", signature="s", body=[BLUEZ]))
    if reply is None or reply.message_type is MessageType.ERROR or not reply.body[0]:
        await ble_bless.close_bus(bus)
        raise ConfigError(f"BLE needs BlueZ, and nobody owns {BLUEZ} on the system bus at "
                          f"{where}; is bluetoothd running (systemctl start bluetooth)?")
    return bus


async def call(bus: MessageBus, path: str, interface: str, member: str, *,
               signature: str = "", body: list[Any] | None = None) -> list[Any]:
    """A method call to BlueZ; raises :class:`DBusError` with BlueZ's error."""
    reply = await asyncio.wait_for(bus.call(Message(
        destination=BLUEZ, path=path, interface=interface, member=member, signature=signature,
        body=body or [])), CALL_TIMEOUT_S)
    assert reply is not None
    if reply.message_type is MessageType.ERROR:
        raise DBusError(  # type: ignore[no-untyped-call]
            reply.error_name or "error", str(reply.body[0] if reply.body else ""))
    return list(reply.body)


async def managed_objects(bus: MessageBus) -> dict[str, dict[str, dict[str, Variant]]]:
    """BlueZ's objects: {path: {interface: {property: value}}}."""
    (objects,) = await call(bus, "/", "org.freedesktop.DBus.ObjectManager", "GetManagedObjects")
    result: dict[str, dict[str, dict[str, Variant]]] = objects
    return result


class BleEndpoint:
    """The board's SMP GATT service on one BlueZ adapter (``hci0``)."""

    def __init__(self, runner: Runner, adapter: str = "hci0") -> None:
        self.runner = runner
        self.device = runner.device
        self.adapter = adapter
        self.adapter_path = f"/org/bluez/{adapter}"
        self.config = self.device.profile.firmware.ble
        self.scale = runner.scale
        self.mtu = self.config.mtu
        """The current connection's ATT MTU."""
        self.link = LinkModel(self.config, self.scale) if self.scale > 0 else None
        self.reassembler = Reassembler(self.device.profile.firmware.buf_size,
                                       reassembly=self.config.reassembly)
        self.subscribed = False
        """A central has turned notifications on (and not off, nor gone)."""
        self.connected: set[str] = set()
        """Object paths of the centrals connected (the adapter's device objects)."""
        self.writes = 0
        """Writes received."""
        self.notifications = 0
        """Notifications sent."""
        self.register_error: str | None = None
        """Why BlueZ refused the service or its advertisement the last time it was offered."""
        self._session = 0
        self._loop = asyncio.get_running_loop()
        self._bus: MessageBus | None = None
        self._server: Any = None
        self._char: Any = None
        self._registered = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: list[socket.socket] = []
        self._rx: deque[Callable[[], None]] = deque()
        self._tx: deque[Callable[[], None]] = deque()
        self._discoverable: tuple[bool, int] | None = None
        self._watching = False

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Set the service up; it is registered and advertised whenever the board is up."""
        self._bus = await connect_system_bus()
        await self._check_adapter()
        ble_bless.patch()
        server = BlessServerBlueZDBus(self.config.name, self._loop, adapter=self.adapter)
        try:
            await server.setup_task
        except Exception as exc:
            raise ConfigError(f"bless could not set up on {self.adapter}: {exc}") from None
        self._server = server
        # StartNotify and StopNotify are the CCC writes of the central.
        server.app.StartNotify = self._start_notify
        server.app.StopNotify = self._stop_notify
        await server.add_new_service(SMP_SERVICE_UUID)
        await server.add_new_characteristic(
            SMP_SERVICE_UUID, SMP_CHARACTERISTIC_UUID,
            GATTCharacteristicProperties.write_without_response
            | GATTCharacteristicProperties.notify,
            None, GATTAttributePermissions.writeable)
        self._char = server.get_characteristic(SMP_CHARACTERISTIC_UUID)
        ble_bless.prepare(self._char.gatt, self)
        await self._make_discoverable()
        await self._watch_devices()
        self.runner.boot_listeners.append(self._board_up)
        self.runner.down_listeners.append(self._board_down)
        if self.runner.online.is_set():
            self._board_up()

    async def _check_adapter(self) -> None:
        assert self._bus is not None
        objects = await managed_objects(self._bus)
        adapters = sorted(p.rsplit("/", 1)[-1] for p, i in objects.items() if ADAPTER in i)
        if self.adapter_path not in objects or ADAPTER not in objects[self.adapter_path]:
            have = f"BlueZ has {', '.join(adapters)}" if adapters else \
                "BlueZ has no adapter at all (is a Bluetooth controller attached?)"
            raise ConfigError(f"no Bluetooth adapter {self.adapter}: {have}")
        interfaces = objects[self.adapter_path]
        for needed in ("org.bluez.GattManager1", "org.bluez.LEAdvertisingManager1"):
            if needed not in interfaces:
                raise ConfigError(f"Bluetooth adapter {self.adapter} has no {needed}: "
                                  "it cannot be an LE peripheral")
        if not interfaces[ADAPTER]["Powered"].value:
            log.info("BLE: powering %s on", self.adapter)
            await self._set_adapter("Powered", Variant("b", True))

    async def _set_adapter(self, name: str, value: Variant) -> None:
        assert self._bus is not None
        await call(self._bus, self.adapter_path, PROPERTIES, "Set", signature="ssv",
                   body=[ADAPTER, name, value])

    async def _make_discoverable(self) -> None:
        # BlueZ (and BlueZoo) report an LE advertisement as discoverable only if the adapter is;
        # bless sets neither. Discoverable for good (timeout 0), restored on close.
        assert self._bus is not None
        objects = await managed_objects(self._bus)
        props = objects[self.adapter_path][ADAPTER]
        self._discoverable = (bool(props["Discoverable"].value),
                              int(props["DiscoverableTimeout"].value))
        await self._set_adapter("DiscoverableTimeout", Variant("u", 0))
        await self._set_adapter("Discoverable", Variant("b", True))

    async def _watch_devices(self) -> None:
        assert self._bus is not None
        rule = (f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES}',"
                f"member='PropertiesChanged',arg0='{DEVICE}',path_namespace='{self.adapter_path}'")
        await self._bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule]))
        self._bus.add_message_handler(self._on_message)
        self._watching = True
        objects = await managed_objects(self._bus)
        self.connected = {p for p, i in objects.items()
                          if p.startswith(self.adapter_path + "/") and DEVICE in i
                          and i[DEVICE]["Connected"].value}

    def describe(self) -> str:
        """What the ready line says."""
        cfg = self.config
        return (f"{self.adapter} as {cfg.name!r} (MTU {cfg.mtu}, "
                f"{cfg.conn_interval_ms:g} ms x {cfg.packets_per_interval} packets, "
                f"reassembly {'on' if cfg.reassembly else 'off'})")

    async def settled(self) -> None:
        """Wait until registering or withdrawing the service is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    @property
    def advertising(self) -> bool:
        """The service and its advertisement are registered with BlueZ."""
        return self._registered

    async def close(self) -> None:
        """Power the radio off for good: disconnect, withdraw the service, restore the adapter."""
        if self._closed:
            return
        self._closed = True
        for listeners, fn in ((self.runner.boot_listeners, self._board_up),
                              (self.runner.down_listeners, self._board_down)):
            if fn in listeners:
                listeners.remove(fn)
        await self.settled()
        self._end_session()
        try:
            async with self._lock:
                await self._withdraw()
                if self._discoverable is not None and self._bus is not None:
                    discoverable, timeout = self._discoverable
                    await self._set_adapter("Discoverable", Variant("b", discoverable))
                    await self._set_adapter("DiscoverableTimeout", Variant("u", timeout))
        except (DBusError, TimeoutError) as exc:
            log.warning("BLE: %s while closing", exc)
        finally:
            if self._server is not None:
                await ble_bless.close_bus(self._server.bus)
            if self._bus is not None:
                if self._watching:
                    self._bus.remove_message_handler(self._on_message)
                await ble_bless.close_bus(self._bus)

    # -- the board goes down and comes up ---------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _board_up(self) -> None:
        self._spawn(self._register())

    def _board_down(self) -> None:
        self._end_session()
        self._spawn(self._withdraw_locked())

    async def _register(self) -> None:
        async with self._lock:
            if self._closed or self._registered or not self.runner.online.is_set():
                return
            try:
                await self._server.start()
            except Exception as exc:  # BlueZ refused: say so, keep serving the other transports
                self.register_error = f"{type(exc).__name__}: {exc}"
                log.error("BLE: cannot register the SMP service on %s: %s", self.adapter, exc)
                return
            self.register_error = None
            self._registered = True
            log.info("BLE: advertising as %r on %s", self.config.name, self.adapter)

    async def _withdraw_locked(self) -> None:
        async with self._lock:
            try:
                await self._withdraw()
            except (DBusError, TimeoutError) as exc:
                log.warning("BLE: %s while going down", exc)

    async def _withdraw(self) -> None:
        # The radio goes silent at once: the advertisement and the GATT service first, so that
        # a central which notices the drop and rescans does not find the board still there.
        if not self._registered:
            return
        self._registered = False
        await self._server.stop()
        log.info("BLE: %s stopped advertising", self.adapter)
        await self.disconnect_centrals()

    async def disconnect_centrals(self) -> int:
        """Drop the link to every connected central (``Device1.Disconnect`` from this side);
        returns how many there were."""
        assert self._bus is not None
        objects = await managed_objects(self._bus)
        dropped = 0
        for path, interfaces in objects.items():
            props = interfaces.get(DEVICE)
            if (props is None or not path.startswith(self.adapter_path + "/")
                    or not props["Connected"].value):
                continue
            log.info("BLE: disconnecting %s", props["Address"].value)
            await call(self._bus, path, DEVICE, "Disconnect")
            dropped += 1
        return dropped

    # -- connections --------------------------------------------------------------------------

    def _on_message(self, message: Message) -> None:
        if (message.message_type is not MessageType.SIGNAL or message.member != "PropertiesChanged"
                or not message.body or message.body[0] != DEVICE):
            return
        changed: dict[str, Variant] = message.body[1]
        if "Connected" not in changed:
            return
        path = message.path or ""
        if changed["Connected"].value:
            log.info("BLE: central %s connected", path.rsplit("/dev_", 1)[-1].replace("_", ":"))
            self.connected.add(path)
        elif path in self.connected:
            log.info("BLE: central %s disconnected",
                     path.rsplit("/dev_", 1)[-1].replace("_", ":"))
            self.connected.discard(path)
            self._end_session()

    def _end_session(self) -> None:
        """The connection is over (the central went, or the board did): what was in flight is
        lost, and the next connection starts afresh."""
        self._session += 1
        self.reassembler.drop()
        self.subscribed = False
        self.mtu = self.config.mtu
        if self.link is not None:
            self.link.reset()
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()

    def _client_mtu(self, options: dict[str, Any]) -> None:
        stated = options.get("mtu")
        if stated is None:
            return
        mtu = max(ATT_MIN_MTU, min(self.mtu, int(
            stated.value if isinstance(stated, Variant) else stated)))
        if mtu != self.mtu:
            log.info("BLE: the client's MTU is %d: notifications of up to %d bytes", mtu,
                     mtu - ATT_HEADER)
            self.mtu = mtu

    def _start_notify(self, _: object) -> None:
        self.subscribed = True

    def _stop_notify(self, _: object) -> None:
        # CCC written 0: Zephyr's smp_bt_ccc_changed drops a partial packet.
        self.subscribed = False
        self.reassembler.drop()

    # -- ble_bless.Handler --------------------------------------------------------------------

    def acquire_write(self, options: dict[str, Any]) -> tuple[int, int]:
        """A socket for the client's writes (each datagram one write), and the MTU."""
        self._client_mtu(options)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        # Both ends stay open until the connection ends: the reply carries ``theirs`` later.
        self._sockets += [ours, theirs]
        self._loop.add_reader(ours.fileno(), self._socket_readable, ours)
        return theirs.fileno(), self.mtu

    def _socket_readable(self, sock: socket.socket) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            self.write(data, {})
        else:  # the client closed its end (bleak does at once: it only wanted the MTU)
            self._loop.remove_reader(sock.fileno())

    def write(self, value: bytes, options: dict[str, Any]) -> None:
        """One write command from the central."""
        if not self._registered or not self.runner.online.is_set():
            return
        self._client_mtu(options)
        self.writes += 1
        if len(value) > self.mtu - ATT_HEADER:
            log.warning("BLE: dropped a %d-byte write: more than MTU %d - 3 allows",
                        len(value), self.mtu)
            return
        session = self._session
        if self.link is None:
            self._arrive(value, session)
            return
        at = self.link.book("rx", self._loop.time(), len(value))
        self._later(self._rx, at, lambda: self._arrive(value, session))

    def _arrive(self, value: bytes, session: int) -> None:
        """A write has crossed the link."""
        if session != self._session or not self.runner.online.is_set():
            return
        collected = self.reassembler.collect(value)
        if collected.dropped is not None:
            log.debug("BLE: write of %d bytes dropped: %s", len(value), collected.dropped)
        if collected.packet is not None:
            self.runner.submit(collected.packet, lambda frame: self._respond(frame, session))

    def _respond(self, frame: bytes, session: int) -> None:
        if session != self._session or not self.subscribed:
            log.debug("BLE: response dropped: nobody to notify")
            return
        size = self.mtu - ATT_HEADER
        for start in range(0, len(frame), size):
            chunk = frame[start:start + size]
            if self.link is None:
                self._notify(chunk, session)
            else:
                at = self.link.book("tx", self._loop.time(), len(chunk))
                self._later(self._tx, at, functools.partial(self._notify, chunk, session))

    def _later(self, pipe: deque[Callable[[], None]], at: float,
               action: Callable[[], None]) -> None:
        # asyncio runs timers due at the same moment in no set order, and several PDUs cross
        # in one connection event: each timer runs the oldest action of its direction instead.
        pipe.append(action)
        self._loop.call_at(at, self._run_oldest, pipe)

    @staticmethod
    def _run_oldest(pipe: deque[Callable[[], None]]) -> None:
        pipe.popleft()()

    def _notify(self, chunk: bytes, session: int) -> None:
        if session != self._session or self._closed:
            return
        self._char.value = bytearray(chunk)
        self._server.update_value(SMP_SERVICE_UUID, SMP_CHARACTERISTIC_UUID)
        self.notifications += 1
