"""Group 0, OS management: echo, taskstat, datetime, reset, MCUmgr params, info, bootloader info.

Console echo control (1) and memory pool statistics (3) have no handler in Zephyr, so they are
absent here too and answer ``{"rc": 8}``.
"""

from __future__ import annotations

from typing import Any

from smpsim.config import Thread
from smpsim.device.rtc import DateTime
from smpsim.mcumgr.codec import DecodeError, Pairs, head, head_bytes
from smpsim.mcumgr.dispatcher import (
    BOOL,
    TSTR,
    UINT32,
    Body,
    GroupHandlers,
    Request,
    ResetEffect,
)
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError, OsMgmtErr

OS = GroupHandlers("os")
ECHO_SCHEMA = {"d": TSTR}
_ECHO_PREFIX = b"\xa1\x61d"
_ECHO_ANSWER = b"\xbf\x61r"


@OS.read("echo")
@OS.write("echo")
def echo(req: Request) -> Body:
    """``{"d": tstr}`` -> ``{"r": tstr}``; a missing ``d`` echoes the empty string."""
    data, start = req.data, req.start
    # What clients send, a map of one text "d" (a1 61 64, the text's head, the text), is
    # answered from its bytes: the general path below decodes the text and encodes it again
    # to the same bytes (invalid UTF-8 included) under the shortest head.
    if data.startswith(_ECHO_PREFIX, start):
        try:
            major, length, pos = head(data, start + 3)
        except DecodeError:
            pass  # the general path says what is wrong
        else:
            if major == 3 and length is not None and pos + length <= len(data):
                return _ECHO_ANSWER + head_bytes(3, length) + data[pos:pos + length] + b"\xff"
    args = req.fields(ECHO_SCHEMA)
    return {"r": args.get("d", "")}


def _thread_key(key_kind: str, index: int, thread: Thread) -> str:
    if key_kind == "name":
        return thread.name
    return str(thread.prio if key_kind == "prio" else index)


@OS.read("taskstat")
def taskstat(req: Request) -> Body:
    """Threads keyed by name (or priority / index); duplicate keys are sent as they come."""
    os_cfg = req.profile.firmware.os
    tasks = []
    for index, thread in enumerate(req.profile.firmware.threads):
        stats: dict[str, Any] = {"prio": thread.prio, "tid": index, "state": thread.state}
        if os_cfg.taskstat_stack_info:
            stats["stksiz"] = thread.stack_size // 4
            stats["stkuse"] = thread.stack_used // 4
        tasks.append((_thread_key(os_cfg.taskstat_key, index, thread), stats))
    return {"tasks": Pairs(tasks)}


@OS.read("datetime")
def datetime_get(req: Request) -> Body:
    """``{"datetime": "YYYY-MM-DDTHH:MM:SS[.ms]"}``; never set -> err RTC_NOT_SET."""
    now = req.device.rtc.get()
    if now is None:
        raise GroupError(OsMgmtErr.RTC_NOT_SET)
    text = (f"{now.year:4d}-{now.month:02d}-{now.day:02d}"
            f"T{now.hour:02d}:{now.minute:02d}:{now.second:02d}")
    if req.profile.firmware.os.datetime_ms:
        text += f".{now.ms}"
    return {"datetime": text}


_SPACE = " \t\n\v\f\r"
_LIMITS = ((1900, 11899), (1, 12), (1, 31), (0, 23), (0, 59), (0, 59))


def _strtol(text: bytes, pos: int) -> tuple[int, int] | None:
    """C ``strtol(…, 10)``: skip white space, optional sign, digits; ``None`` if no digits."""
    i = pos
    while i < len(text) and chr(text[i]) in _SPACE:
        i += 1
    sign = 1
    if i < len(text) and text[i] in b"+-":
        sign = -1 if text[i] == ord("-") else 1
        i += 1
    start = i
    while i < len(text) and 0x30 <= text[i] <= 0x39:
        i += 1
    if i == start:
        return None
    value = sign * int(text[start:i])
    return max(-0x80000000, min(0x7FFFFFFF, value)), i  # 32-bit long saturates


def parse_datetime(raw: str, with_ms: bool) -> DateTime:
    """Parse as ``os_mgmt_datetime_write`` does; any refusal is ``MgmtError(EINVAL)``.

    Six decimal fields, each followed by exactly one separator of any kind; whatever follows
    the seconds is ignored, except ``.ms`` on builds with milliseconds.
    """
    text = raw.encode("utf-8", "surrogateescape")
    if not 19 <= len(text) < 26:
        raise MgmtError(MgmtErr.EINVAL)
    values = []
    pos = 0
    for low, high in _LIMITS:
        if pos >= len(text):
            raise MgmtError(MgmtErr.EINVAL)
        parsed = _strtol(text, pos)
        if parsed is None or not low <= parsed[0] <= high:
            raise MgmtError(MgmtErr.EINVAL)
        values.append(parsed[0])
        pos = parsed[1] + 1
    ms = 0
    if with_ms and text[pos - 1:pos] == b"." and pos < len(text):
        parsed = _strtol(text, pos)
        ms = 0 if parsed is None else parsed[0]
        if not 0 <= ms <= 999:
            raise MgmtError(MgmtErr.EINVAL)
    year, month, day, hour, minute, second = values
    return DateTime(year, month, day, hour, minute, second, ms)


@OS.write("datetime")
def datetime_set(req: Request) -> Body:
    """``{"datetime": tstr}`` sets the RTC; 19 to 25 characters, fields in range."""
    args = req.fields({"datetime": TSTR})
    req.device.rtc.set(parse_datetime(args.get("datetime", ""),
                                      req.profile.firmware.os.datetime_ms))
    return None


@OS.write("reset")
def reset(req: Request) -> Body:
    """Answer ``{}`` now; reboot after ``reset_ms``. Payload decode errors are ignored."""
    os_cfg = req.profile.firmware.os
    schema = {}
    if os_cfg.reset_hook:
        schema["force"] = BOOL
    if os_cfg.reset_boot_mode:
        schema["boot_mode"] = UINT32
    if schema:
        try:
            args = req.fields(schema)
        except MgmtError:
            args = {}
        if "boot_mode" in args:
            req.device.boot_mode = args["boot_mode"] & 0xFF
    req.effects.append(ResetEffect(os_cfg.reset_ms / 1000))
    return None


@OS.read("params")
def params(req: Request) -> Body:
    """``{"buf_size", "buf_count"}``: the SMP buffer pool; the payload is ignored."""
    fw = req.profile.firmware
    return {"buf_size": fw.buf_size, "buf_count": fw.buf_count}


_INFO_ORDER = "snrvbmpio"


def _info_field(req: Request, letter: str) -> str:
    fw, board = req.profile.firmware, req.profile.board
    return {
        "s": "Zephyr", "n": fw.node_name, "r": req.device.build_version, "v": fw.kernel_version,
        "b": fw.build_date or "", "m": board.arch, "p": board.processor, "i": board.target,
        "o": "Zephyr",
    }[letter]


@OS.read("info")
def info(req: Request) -> Body:
    """``{"format": tstr}`` -> ``{"output": tstr}``, fields in the fixed order s n r v b m p i o.

    Every byte of the format must be a known letter (``b`` only with a build date), else the
    group error INVALID_FORMAT; ``a`` means all; nothing selected means ``s``.
    """
    args = req.fields({"format": TSTR})
    fmt = args.get("format", "").encode("utf-8", "surrogateescape")
    known = set(_INFO_ORDER) if req.profile.firmware.build_date else set(_INFO_ORDER) - {"b"}
    selected: set[str] = set()
    for byte in fmt:
        letter = chr(byte)
        if letter == "a":
            selected |= known
        elif letter in known:
            selected.add(letter)
        else:
            raise GroupError(OsMgmtErr.INVALID_FORMAT)
    if not selected:
        selected = {"s"}
    output = " ".join(_info_field(req, c) for c in _INFO_ORDER if c in selected)
    # snprintf into a fixed buffer: output plus its terminator must fit.
    if len(output.encode()) >= req.profile.firmware.os.info_max_response:
        raise MgmtError(MgmtErr.EMSGSIZE)
    return {"output": output}


@OS.read("bootloader_info")
def bootloader_info(req: Request) -> Body:
    """No query: ``{"bootloader": "MCUboot"}``; ``mode``: ``{"mode"[, "no-downgrade"]}``.

    Any other query returns QUERY_YIELDS_NO_ANSWER as a plain ``rc`` (3), as Zephyr does.
    """
    args = req.fields({"query": TSTR})
    if "query" not in args:
        return {"bootloader": "MCUboot"}
    if args["query"] != "mode":
        raise MgmtError(OsMgmtErr.QUERY_YIELDS_NO_ANSWER)
    os_cfg = req.profile.firmware.os
    body: dict[str, Any] = {"mode": os_cfg.bootloader_mode}
    if os_cfg.no_downgrade:
        body["no-downgrade"] = True
    return body
