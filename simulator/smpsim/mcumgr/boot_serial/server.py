"""MCUboot's recovery SMP server: ``boot_serial_input`` and its handlers.

One SMP packet in (what the framing delivered), at most one response out, except where MCUboot
itself sends two. The rules, all MCUboot's:

* A packet under 8 bytes, an op other than READ (0) or WRITE (2), or a header length smaller
  than the payload present is dropped without an answer. A larger length is fine: the handler
  gets the bytes that are there. Several SMP packets in one serial frame are therefore dropped.
* Dispatch ignores the op (except the image state command: READ lists, WRITE sets).
* The response header is the request header with the op incremented, flags 0 and the new
  length: version and reserved bits are copied verbatim, and so are group, seq and cmd.
* Errors are a top-level ``{"rc": N}`` for SMP v1 and v2 alike; upload successes carry
  ``rc`` 0 too. Commands MCUboot does not have (or the build leaves out) answer ``{"rc": 8}``.
* Handlers that take no arguments (reset, params, console echo control, image list) ignore
  the payload entirely.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from smpsim.device.flash import PowerLoss
from smpsim.mcumgr.boot_serial import images
from smpsim.mcumgr.boot_serial.cbor import echo_text
from smpsim.mcumgr.boot_serial.upload import upload
from smpsim.mcumgr.codec import encode
from smpsim.mcumgr.dispatcher import ResetEffect
from smpsim.mcumgr.errors import MgmtErr
from smpsim.mcumgr.server import Reply

if TYPE_CHECKING:
    from smpsim.device.mcu import Device

log = logging.getLogger(__name__)

HEADER_SIZE = 8
READ, WRITE = 0, 2
GROUP_OS, GROUP_IMAGE, GROUP_ZEPHYR = 0, 1, 63
OS_ECHO, OS_ECHO_CTRL, OS_RESET, OS_PARAMS = 0, 1, 5, 6
IMG_STATE, IMG_UPLOAD, IMG_SLOT_INFO = 0, 1, 6
ZEPHYR_ERASE_STORAGE = 0
RESET_DELAY_S = 0.25
"""``bs_reset`` sleeps 250 ms after its answer, then reboots."""


def _rc(code: int) -> dict[str, Any]:
    return {"rc": int(code)}


class BootSerialServer:
    """The serial recovery server of one device (whose MCUboot has ``serial_recovery``)."""

    def __init__(self, device: Device) -> None:
        loader = device.bootloader
        if loader is None:
            raise ValueError("serial recovery needs MCUboot")
        self.device = device
        self.loader = loader
        self.config = loader.config.serial_recovery
        count = device.partitions.image_count
        self.slot_info = self.config.slot_info if self.config.slot_info is not None \
            else count > 1

    def handle(self, packet: bytes) -> Reply:
        """``boot_serial_input`` for one received SMP packet."""
        reply = Reply()
        if len(packet) < HEADER_SIZE:
            return reply
        op = packet[0] & 0x07
        length = int.from_bytes(packet[2:4], "big")
        if op not in (READ, WRITE) or length < len(packet) - HEADER_SIZE:
            return reply
        clock = self.device.clock
        busy_before = clock.busy_total
        group = int.from_bytes(packet[4:6], "big")
        cmd = packet[7]
        payload = packet[HEADER_SIZE:]
        try:
            bodies = self._dispatch(op, group, cmd, payload, reply)
        except PowerLoss:
            raise  # not an answer: the board is off
        except Exception:
            # A bug in smpsim, not hostile input: say so loudly; the request goes unanswered.
            log.exception("serial recovery: %d/%d failed", group, cmd)
            return Reply()
        for body in bodies:
            reply.frames.append(self._frame(packet, body, len(reply.frames)))
            self.loader.dbg("TX")
        reply.busy_s = clock.busy_total - busy_before
        return reply

    @staticmethod
    def _frame(request: bytes, body: bytes, sent: int) -> bytes:
        """``boot_serial_output``: the request header, op incremented (once per output of the
        same request), flags 0, the length; the group is byte-swapped in place again at each
        output, so a second one carries it swapped."""
        group = request[4:6] if sent % 2 == 0 else request[5:3:-1]
        return (bytes([(request[0] & 0xF8) | ((request[0] + 1 + sent) & 0x07), 0])
                + len(body).to_bytes(2, "big") + group + request[6:8] + body)

    def _dispatch(self, op: int, group: int, cmd: int, payload: bytes,
                  reply: Reply) -> list[bytes]:
        config = self.config
        body: dict[str, Any]
        if group == GROUP_IMAGE:
            if cmd == IMG_STATE:
                if op == READ:
                    body = images.image_list(self.device)
                elif config.image_state:
                    body = images.set_state(self.device, payload)
                else:
                    body = _rc(MgmtErr.ENOTSUP)
            elif cmd == IMG_UPLOAD:
                body = upload(self.device, payload)
            elif cmd == IMG_SLOT_INFO and self.slot_info:
                info = encode(images.slot_info(self.device))
                if op != READ:
                    # bs_slot_info answers ENOTSUP and carries on: a second output follows
                    # with both maps in it.
                    first = encode(_rc(MgmtErr.ENOTSUP))
                    return [first, first + info]
                return [info]
            else:
                body = _rc(MgmtErr.ENOTSUP)
        elif group == GROUP_OS:
            body = self._os(cmd, payload, reply)
        elif config.storage_erase:
            body = self._peruser(op, group, cmd)
        else:
            body = _rc(MgmtErr.ENOTSUP)
        return [encode(body)]

    def _os(self, cmd: int, payload: bytes, reply: Reply) -> dict[str, Any]:
        config = self.config
        if cmd == OS_ECHO and config.echo:
            text = echo_text(payload)
            return _rc(MgmtErr.EINVAL) if text is None else {"r": text}
        if cmd == OS_ECHO_CTRL:
            return _rc(MgmtErr.EOK)
        if cmd == OS_RESET:
            reply.effects.append(ResetEffect(RESET_DELAY_S))
            return _rc(MgmtErr.EOK)
        if cmd == OS_PARAMS and config.params:
            return {"buf_size": config.max_receive_size, "buf_count": 1}
        return _rc(MgmtErr.ENOTSUP)

    def _peruser(self, op: int, group: int, cmd: int) -> dict[str, Any]:
        """``bs_peruser_system_specific`` with the storage erase handler."""
        if (group, op, cmd) != (GROUP_ZEPHYR, WRITE, ZEPHYR_ERASE_STORAGE):
            return _rc(MgmtErr.ENOTSUP)
        storage = self.device.partitions.get("storage")
        if storage is None:
            self.loader.error("failed to open flash area")
            return _rc(MgmtErr.EUNKNOWN)
        storage.erase(0, storage.size)
        return _rc(MgmtErr.EOK)
