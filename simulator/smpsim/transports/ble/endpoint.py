"""SMP over Bluetooth LE: smp_svr's GATT service on a BlueZ adapter, through bless.

The board is a peripheral: it advertises the profile's name (``firmware.ble.name``) with the SMP
service ``8d53dc1d-1db7-4cd3-868b-8a527460aa84``, whose one characteristic
``da2e7828-fbce-4e01-ae9e-261174997c48`` takes requests as writes without response and sends
responses as notifications, as Zephyr's ``smp_bt.c`` does:

* Requests are reassembled from the writes by the SMP header's length
  (:mod:`smpsim.mcumgr.framing.reassembly`), or, with ``reassembly = false``, each write is a unit.
  A write longer than MTU - 3 cannot happen on a real link and is dropped.
* Responses are cut into notifications of at most MTU - 3 bytes, sent in order. They are sent
  only while a central is subscribed, and only on the connection that asked (a response to a
  central that has gone is dropped, as ``smp_bt_tx_pkt`` drops it).
* The MTU of a connection is the smaller of the profile's ``mtu`` and what the client says:
  BlueZ's ``mtu`` option with each write, or the one in ``AcquireWrite`` (which smpclient and
  smpmgr call to learn the MTU, and which BlueZoo passes to the server). On the mock, which
  exchanges no MTU, the central's (:class:`~smpsim.transports.ble.link.Central`) caps it too.
* **Reset**: when the device goes down (os reset, a crash, the watchdog, a power cut) the
  board's radio goes with it. The endpoint unregisters the advertisement and the GATT
  application, so the board is neither seen nor served while it boots, and disconnects every
  connected central from the adapter side (``Device1.Disconnect`` on the adapter's device
  objects: on BlueZ this drops the LE link, and the central sees ``Connected`` turn false, as
  when a board resets). When the board is up again both are registered again, and it can be
  found and connected to. (A real central notices a dead peripheral by its supervision timeout:
  0.42 s with smp_svr's conn-param control; the drop here is at once.)
* **Link model**: at a time scale above 0, on the BlueZoo mock (which has no radio: everything
  crosses at once), writes and notifications travel at the speed of the profile's link
  (:mod:`smpsim.transports.ble.link`): connection events every ``conn_interval_ms`` (or the
  central's own interval: a desktop's stack keeps 30 ms), each with room for
  ``packets_per_interval`` link-layer packets of ``data_length`` bytes per direction.
  A write reaches the board at the connection event that carries its last packet; a response
  leaves in the events after the board has it ready. At time scale 0 everything is instant. On
  a real controller the radio itself sets the pace (as a real serial port's hardware does).

* **BlueZ or the bus goes away** (bluetoothd stops, the D-Bus daemon dies): the radio is gone
  for good. The endpoint says so at once (``lost``, logged as an error), stops talking to D-Bus,
  and closes without waiting for an answer that cannot come; ``smpsim run`` then exits non-zero
  naming the cause. Every D-Bus step of closing is bounded in time besides.

Not modelled: the connection parameter update itself (the interval is the one SMP traffic gets
once ``MCUMGR_TRANSPORT_BT_CONN_PARAM_CONTROL`` has asked for it), pairing and encrypted
characteristics (smp_svr's are open), more than one central (smp_svr allows one connection).

The bless workarounds are in :mod:`smpsim.transports.ble.bless_fixes`, the adapter's side of BlueZ
(checks, discoverable, connections, disconnecting) in :mod:`smpsim.transports.ble.bluez`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from bless.backends.attribute import GATTAttributePermissions
from bless.backends.bluezdbus.server import BlessServerBlueZDBus
from bless.backends.characteristic import GATTCharacteristicProperties
from dbus_next.errors import DBusError
from dbus_next.signature import Variant

from smpsim.errors import ConfigError
from smpsim.mcumgr.framing.reassembly import Reassembler
from smpsim.transports.ble import bless_fixes
from smpsim.transports.ble.bluez import AdapterControl, address_of
from smpsim.transports.ble.link import (
    ATT_HEADER,
    CENTRALS,
    DEFAULT_CENTRAL,
    Central,
    LinkModel,
    central,
    connection_mtu,
)
from smpsim.transports.endpoint import EndpointSpec
from smpsim.transports.origin import Origin
from smpsim.transports.runner import Runner

log = logging.getLogger(__name__)

SMP_SERVICE_UUID = "8d53dc1d-1db7-4cd3-868b-8a527460aa84"
SMP_CHARACTERISTIC_UUID = "da2e7828-fbce-4e01-ae9e-261174997c48"
ATT_MIN_MTU = 23
CLOSE_TIMEOUT_S = 3.0
"""The longest closing may wait for BlueZ (withdraw the service, give the adapter back)."""


class BleEndpoint:
    """The board's SMP GATT service on one BlueZ adapter (``hci0``)."""

    medium = "BLE"

    def __init__(self, runner: Runner, adapter: str = "hci0",
                 central: Central = CENTRALS[DEFAULT_CENTRAL]) -> None:
        self.runner = runner
        self.device = runner.device
        self.adapter = adapter
        self.config = self.device.profile.firmware.ble
        self.central = central
        """The kind of central the mock's link stands for (a real radio has a real one)."""
        self.scale = runner.scale
        self.max_mtu = self.config.mtu
        """The largest MTU a connection gets: the profile's (and on the mock the central's)."""
        self.mtu = self.max_mtu
        """The current connection's ATT MTU."""
        self.link: LinkModel | None = None
        """The link model, when it paces the link (see :meth:`start`)."""
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
        self._origin = Origin("ble", adapter)
        self.register_error: str | None = None
        """Why BlueZ refused the service or its advertisement the last time it was offered."""
        self.lost: str | None = None
        """Why the radio went away while serving (the bus died, BlueZ left it), if it did:
        ``"<cause> while serving BLE on hci0"``."""
        self._session = 0
        self._loop = asyncio.get_running_loop()
        self._control: AdapterControl | None = None
        self._server: Any = None
        self._char: Any = None
        self._registered = False
        self._closed = False
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._sockets: list[socket.socket] = []
        self._rx: deque[Callable[[], None]] = deque()
        self._tx: deque[Callable[[], None]] = deque()

    # -- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Set the service up; it is registered and advertised whenever the board is up."""
        self._control = await AdapterControl.open(self.adapter)
        if self._control.mock:
            # The mock exchanges no MTU: the central's stands in for the exchange.
            self.max_mtu = self.mtu = connection_mtu(self.config, self.central)
        if self.scale > 0 and self._control.mock:
            # A controller's radio sets its own pace, as a real serial port does; only the
            # mock's instant link needs the model's.
            self.link = LinkModel(self.config, self.scale, self.central)
        bless_fixes.patch()
        server = self._server = BlessServerBlueZDBus(self.config.name, self._loop,
                                                     adapter=self.adapter)
        try:
            await server.setup_task
        except Exception as exc:
            raise ConfigError(f"bless could not set up on {self.adapter}: {exc}") from None
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
        bless_fixes.prepare(self._char.gatt, self)
        await self._control.make_discoverable()
        await self._control.watch(self._connection_changed)
        await self._control.watch_lost(self._radio_lost)
        self.connected = set(await self._control.connected())
        self.runner.boot_listeners.append(self._board_up)
        self.runner.down_listeners.append(self._board_down)
        if self.runner.online.is_set():
            self._board_up()

    def describe(self) -> str:
        """What the ready line says."""
        cfg = self.config
        if self._control is not None and not self._control.mock:
            pace = "paced by the radio"
        elif self.link is None:
            pace = f"BlueZoo mock, {self.central.name} central, instant"
        else:
            pace = (f"BlueZoo mock, {self.central.name} central, link model "
                    f"{self.link.interval_ms:g} ms x {self.link.per_event} packets")
        return (f"{self.adapter} as {cfg.name!r} (MTU {self.max_mtu}, "
                f"reassembly {'on' if cfg.reassembly else 'off'}, {pace})")

    async def settled(self) -> None:
        """Wait until registering or withdrawing the service is done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def started(self) -> None:
        """The board is up: wait until it advertises (a refusal is a :class:`ConfigError`)."""
        await self.settled()
        if self.register_error is not None:
            raise ConfigError(f"BlueZ refused the SMP service on {self.adapter}: "
                              f"{self.register_error}")

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
        try:
            # A D-Bus call whose answer never comes (BlueZ hung, or gone in a way nobody told
            # us) must not keep the process from stopping.
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.settled()
                self._end_session()
                if self.lost is None:
                    async with self._lock:
                        await self._withdraw()
                        if self._control is not None:
                            await self._control.restore()
        except (DBusError, TimeoutError) as exc:
            log.warning("BLE: %s while closing", exc or "no answer from BlueZ")
        finally:
            self._cancel_tasks()
            self._end_session()
            bus = getattr(self._server, "bus", None)  # set once bless's setup has connected
            if bus is not None:
                await bless_fixes.close_bus(bus)
            if self._control is not None:
                await self._control.close()

    def _radio_lost(self, reason: str) -> None:
        if self._closed or self.lost is not None:
            return
        self.lost = f"{reason} while serving BLE on {self.adapter}"
        log.error("BLE: %s: the board is not served over BLE any more", reason)
        # Nothing on the bus answers now: drop what waits for it, and never ask again.
        self._registered = False
        self._cancel_tasks()
        self._end_session()

    def _cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()

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
            if (self._closed or self._registered or self.lost is not None
                    or not self.runner.online.is_set()):
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
        if not self._registered or self.lost is not None:
            return
        self._registered = False
        await self._server.stop()
        log.info("BLE: %s stopped advertising", self.adapter)
        await self.disconnect_centrals()

    async def disconnect_centrals(self) -> int:
        """Drop the link to every connected central (``Device1.Disconnect`` from this side);
        returns how many there were."""
        assert self._control is not None
        centrals = await self._control.connected()
        for path, address in centrals.items():
            log.info("BLE: disconnecting %s", address)
            await self._control.disconnect(path)
        return len(centrals)

    # -- connections --------------------------------------------------------------------------

    def _connection_changed(self, path: str, connected: bool) -> None:
        if connected:
            log.info("BLE: central %s connected", address_of(path))
            self.connected.add(path)
        elif path in self.connected:
            log.info("BLE: central %s disconnected", address_of(path))
            self.connected.discard(path)
            self._end_session()

    def _end_session(self) -> None:
        """The connection is over (the central went, or the board did): what was in flight is
        lost, and the next connection starts afresh."""
        self._session += 1
        self.reassembler.drop()
        self.subscribed = False
        self.mtu = self.max_mtu
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

    # -- bless_fixes.Handler --------------------------------------------------------------------

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
            self.runner.submit(collected.packet, lambda frame: self._respond(frame, session),
                               self._origin)

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


async def open_endpoint(runner: Runner, spec: EndpointSpec) -> BleEndpoint:
    """Serve SMP over BLE on the spec's adapter (default ``hci0``)."""
    endpoint = BleEndpoint(runner, spec.where or "hci0",
                           central(spec.central or DEFAULT_CENTRAL))
    try:
        await endpoint.start()
    except BaseException:
        await endpoint.close()
        raise
    return endpoint
