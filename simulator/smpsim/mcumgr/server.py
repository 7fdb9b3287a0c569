"""The sans-IO SMP server: one transport unit of bytes in, response frames and effects out.

Follows Zephyr's ``smp_process_request_packet``: frames are taken from the unit one after the
other; a unit with fewer than 8 bytes left ends silently; a length that promises more bytes than
remain gets ``{"rc": 9}``; the first frame answered with an ``rc`` error ends the unit.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smpsim.device.flash import PowerLoss
from smpsim.mcumgr.codec import encode
from smpsim.mcumgr.dispatcher import Dispatcher, Effect, GroupHandlers, Request
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError, translate_v1
from smpsim.mcumgr.groups import IMPLEMENTED
from smpsim.mcumgr.header import HEADER_SIZE, Header

if TYPE_CHECKING:
    from smpsim.device.mcu import Device

log = logging.getLogger(__name__)
DEBUG = logging.DEBUG


@dataclass(slots=True)
class Reply:
    """The server's answer to one transport unit."""

    frames: list[bytes] = field(default_factory=list)
    """Response frames, each header + CBOR; empty when Zephyr would stay silent."""
    effects: list[Effect] = field(default_factory=list)
    """What the transport must do after sending (reset, ...)."""
    busy_s: float = 0.0
    """Emulated seconds the chip spent on the unit (flash work); sleep it off before sending."""


def _rc_body(rc: int, rsn: str | None, verbose: bool) -> bytes:
    body: dict[str, Any] = {"rc": rc}
    if rsn is not None and verbose:
        body["rsn"] = rsn
    return encode(body)


class Server:
    """SMP server of one device. ``handle`` never raises, whatever the bytes; only a power cut
    (:class:`~smpsim.device.flash.PowerLoss`, a fault injected into the flash) gets through."""

    def __init__(self, device: Device,
                 implemented: Mapping[str, GroupHandlers] | None = None) -> None:
        self.device = device
        self.profile = device.profile
        self.dispatcher = Dispatcher(self.profile, IMPLEMENTED if implemented is None
                                     else implemented)
        fw = self.profile.firmware
        self._max_body = fw.buf_size - HEADER_SIZE
        self._verbose = fw.verbose_errors
        self._v1 = fw.original_protocol
        self._handlers = self.dispatcher.table
        self._clock = device.clock

    def handle(self, unit: bytes) -> Reply:
        """Serve every frame in ``unit`` (a datagram, a serial packet, a BLE packet)."""
        clock = self._clock
        end = len(unit)
        if end >= HEADER_SIZE:
            header = Header.parse(unit, 0)
            if header.length == end - HEADER_SIZE:
                # One frame filling the unit (what clients send): the loop below would answer
                # it alike, with one more round of bookkeeping per request.
                busy_before = clock.busy_total
                frame, _, effects = self._single(header, unit, HEADER_SIZE)
                return Reply([frame], effects, clock.busy_total - busy_before)
        reply = Reply()
        busy_before = clock.busy_total
        pos = 0
        while end - pos >= HEADER_SIZE:
            header = Header.parse(unit, pos)
            start = pos + HEADER_SIZE
            if header.length > end - start:
                reply.frames.append(self._error(header, MgmtErr.ECORRUPT, None))
                break
            frame, ok, effects = self._single(header, unit, start)
            reply.frames.append(frame)
            reply.effects += effects
            if not ok:
                break
            pos = start + header.length
        reply.busy_s = clock.busy_total - busy_before
        return reply

    def _error(self, header: Header, rc: int, rsn: str | None) -> bytes:
        body = _rc_body(rc, rsn, self._verbose)
        return header.response(len(body)) + body

    def _single(self, header: Header, unit: bytes, start: int) -> tuple[bytes, bool, list[Effect]]:
        """One frame -> (response frame, whether to go on with the unit, its effects)."""
        op, version, _, _, group, seq, cmd = header
        if log.isEnabledFor(DEBUG):
            log.debug("%d/%d op %d seq %d len %d", group, cmd, op, seq, header.length)
        if op != 0 and op != 2:  # noqa: PLR1714 - plain int compares on the hot path
            return self._error(header, MgmtErr.ENOTSUP, None), False, []
        if version == 0 and not self._v1:
            return self._error(header, MgmtErr.UNSUPPORTED_TOO_OLD, None), False, []
        if version > 1:
            return self._error(header, MgmtErr.UNSUPPORTED_TOO_NEW, None), False, []
        handler = self._handlers.get((group, cmd))
        fn = None if handler is None else (handler.read if op == 0 else handler.write)
        if fn is None:
            return self._error(header, MgmtErr.ENOTSUP, None), False, []
        request = Request(header, unit, self.device, self.profile, start)
        try:
            result = fn(request)
            # A handler may answer with its body encoded already (the hot answers: an echo, an
            # upload's next offset).
            body = result if type(result) is bytes else encode(result) if result else b"\xbf\xff"
        except MgmtError as exc:
            return self._error(header, exc.rc, exc.rsn), False, []
        except GroupError as exc:
            if version == 0:
                return (self._error(header, translate_v1(group, exc.rc), exc.rsn), False,
                        [])
            body = encode({"err": {"group": group, "rc": exc.rc}, **exc.extra})
        except PowerLoss:
            raise  # not an answer: the board is off
        except Exception:
            # A bug in smpsim, not hostile input: say so loudly, answer as a failed handler.
            log.exception("handler %d/%d failed", group, cmd)
            return self._error(header, MgmtErr.EUNKNOWN, None), False, []
        if len(body) > self._max_body:
            return self._error(header, MgmtErr.EMSGSIZE, None), False, []
        return header.response(len(body)) + body, True, request.effects
