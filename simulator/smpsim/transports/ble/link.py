"""How long bytes take across a BLE connection: the link model of the BLE transport.

A connection is a series of connection events, one every connection interval; in each, the
central and the peripheral each get a few link-layer packets through. An ATT PDU (a write
command or a notification: the value plus 3 bytes of ATT header) travels in an L2CAP frame
(4 more bytes) cut into packets of up to the data length (27 bytes, or 251 with data length
extension). So a 495-byte write at MTU 498 is 502 bytes, two 251-byte packets.

Throughput on a real link follows from the same arithmetic (Nordic's S140 throughput figures:
packets per event x (MTU - 3) / interval); the packets a side gets per event depend on the PHY,
the event length the controllers grant and the phone; the profile says how many.

Some of it is the central's to decide, not the board's: it runs the connection at the interval
it picks (the board only asks, through conn-param control), its ATT MTU caps the connection's,
and its controller's data length and event length cap the board's. :class:`Central` says what
one kind of central decides; the board's profile says the rest.
"""

from __future__ import annotations

import math

from smpsim.config import Ble
from smpsim.errors import ConfigError
from smpsim.records import Frozen, frozen


@frozen
class Central(Frozen):
    """What a kind of central decides of the connection; ``None``: it goes along with the
    board (grants the interval its profile asks for, takes its MTU, data length, packets)."""

    name: str
    description: str
    conn_interval_ms: float | None = None
    """The interval it runs the connection at, whatever the board asks."""
    mtu: int | None = None
    """The ATT MTU it asks for; the connection's is the smaller of this and the board's."""
    data_length: int | None = None
    """Its controller's largest link-layer payload."""
    packets_per_interval: int | None = None
    """Packets it lets each side send per connection event."""


CENTRALS = {c.name: c for c in (
    Central("phone", "a phone app (nRF Connect Device Manager): asks for MTU 498 and grants the "
            "board's conn-param request", mtu=498),
    # Chrome has no say of its own: the desktop's stack (BlueZ, Windows, macOS) runs the link.
    # Those keep a connection at their default interval (30 ms: BlueZ's and Windows' minimum
    # for a new LE connection) instead of smp_svr's 7.5 ms, and exchange a large MTU (517).
    # Web Bluetooth pages write one request and wait for its answer: two intervals a request.
    Central("desktop-chrome", "Chrome's Web Bluetooth on a desktop: the OS stack keeps a 30 ms "
            "interval and exchanges MTU 517", conn_interval_ms=30.0, mtu=517),
)}
DEFAULT_CENTRAL = "phone"


def central(name: str) -> Central:
    """The central of that name; a :class:`ConfigError` lists the known ones."""
    try:
        return CENTRALS[name]
    except KeyError:
        raise ConfigError(f"no BLE central {name!r}: known are "
                          f"{', '.join(sorted(CENTRALS))}") from None


def connection_mtu(ble: Ble, of: Central) -> int:
    """The largest ATT MTU of a connection between the board and that central."""
    return min(ble.mtu, of.mtu) if of.mtu is not None else ble.mtu

ATT_HEADER = 3
"""Opcode and handle in front of a written or notified value."""
L2CAP_HEADER = 4
"""Length and channel in front of an ATT PDU."""


class LinkModel:
    """When PDUs get across a connection, in host seconds (the connection interval times the
    time scale). The interval is the central's, or the one the board's profile asks for if the
    central grants it; packets per event and their size are the smaller of both sides'.

    Connection events come every ``interval`` (a grid from time 0); in each, either side sends
    up to ``per_event`` packets. A PDU handed to the link at ``now`` starts in the first event
    after ``now`` (so an answer goes out one event after its request came in, at the earliest),
    behind the PDUs booked before it in its direction. The directions are booked separately.
    """

    def __init__(self, ble: Ble, scale: float, central: Central = CENTRALS[DEFAULT_CENTRAL],
                 ) -> None:
        interval_ms = central.conn_interval_ms or ble.conn_interval_ms
        self.interval_ms = interval_ms
        """The connection interval, in emulated milliseconds."""
        self.interval = interval_ms / 1000 * scale
        self.per_event = min(ble.packets_per_interval,
                             central.packets_per_interval or ble.packets_per_interval)
        self.data_length = min(ble.data_length, central.data_length or ble.data_length)
        self._booked = {"rx": (-1, 0), "tx": (-1, 0)}

    def packets(self, value_len: int) -> int:
        """Link-layer packets for one write or notification of ``value_len`` bytes."""
        return math.ceil((value_len + ATT_HEADER + L2CAP_HEADER) / self.data_length)

    def book(self, direction: str, now: float, value_len: int) -> float:
        """Book a PDU handed over at ``now`` in direction ``rx`` (to the board) or ``tx``;
        returns the time its last packet is across."""
        event, used = self._booked[direction]
        # A PDU handed over at an event's very time (what this returned) waits for the next:
        # the host hears of a packet only after the event that carried it.
        first = math.floor(now / self.interval + 1e-9) + 1
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
