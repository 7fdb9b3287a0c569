"""How long bytes take across a BLE connection: the link model of the BLE transport.

A connection is a series of connection events, one every connection interval; in each, the
central and the peripheral each get a few link-layer packets through. An ATT PDU (a write
command or a notification: the value plus 3 bytes of ATT header) travels in an L2CAP frame
(4 more bytes) cut into packets of up to the data length (27 bytes, or 251 with data length
extension). So a 495-byte write at MTU 498 is 502 bytes, two 251-byte packets.

Throughput on a real link follows from the same arithmetic (Nordic's S140 throughput figures:
packets per event x (MTU - 3) / interval); the packets a side gets per event depend on the PHY,
the event length the controllers grant and the phone; the profile says how many.
"""

from __future__ import annotations

import math

from smpsim.config import Ble

ATT_HEADER = 3
"""Opcode and handle in front of a written or notified value."""
L2CAP_HEADER = 4
"""Length and channel in front of an ATT PDU."""


class LinkModel:
    """When PDUs get across a connection, in host seconds (the profile's interval times the
    time scale).

    Connection events come every ``interval`` (a grid from time 0); in each, either side sends
    up to ``per_event`` packets. A PDU handed to the link at ``now`` starts in the first event
    after ``now`` (so an answer goes out one event after its request came in, at the earliest),
    behind the PDUs booked before it in its direction. The directions are booked separately.
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
        """Book a PDU handed over at ``now`` in direction ``rx`` (to the board) or ``tx``;
        returns the time its last packet is across."""
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
