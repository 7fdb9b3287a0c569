"""Handler tables: groups register decorated functions; a profile picks which are compiled in.

A handler is one function in its group module::

    @OS.write("echo")
    def echo(req: Request) -> Body: ...

It reads its arguments with :meth:`Request.fields`, returns the response map (``None`` for the
empty map; ``bytes`` for a map it encoded itself, as the hot answers are), and raises
:class:`MgmtError` or :class:`GroupError` for errors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from smpsim.config.catalog import GROUPS, GroupInfo
from smpsim.mcumgr.codec import DecodeError, decode_map
from smpsim.mcumgr.errors import MgmtErr, MgmtError
from smpsim.mcumgr.header import Header
from smpsim.records import Frozen, Record, frozen, record

if TYPE_CHECKING:
    from smpsim.config import Profile
    from smpsim.device.mcu import Device

Body = Mapping[str, Any] | bytes | None
HandlerFn = Callable[["Request"], Body]
Check = Callable[[Any], bool]

# Value checks with zcbor's strictness: exact CBOR major types, no chunked strings.
TSTR: Check = lambda v: type(v) is str  # noqa: E731
BSTR: Check = lambda v: type(v) is bytes  # noqa: E731
BOOL: Check = lambda v: type(v) is bool  # noqa: E731
UINT32: Check = lambda v: type(v) is int and 0 <= v <= 0xFFFFFFFF  # noqa: E731
UINT64: Check = lambda v: type(v) is int and 0 <= v <= 0xFFFFFFFFFFFFFFFF  # noqa: E731
INT32: Check = lambda v: type(v) is int and -0x80000000 <= v <= 0x7FFFFFFF  # noqa: E731


@frozen
class Effect(Frozen):
    """Something the transport must do after sending the reply."""


@frozen
class ResetEffect(Effect):
    """Reboot the device ``delay_s`` emulated seconds after the reply went out."""

    delay_s: float
    """``MCUMGR_GRP_OS_RESET_MS`` in seconds."""


class Request:
    """What a handler sees of one SMP request (a plain class: one is built per frame)."""

    __slots__ = ("data", "device", "effects", "header", "profile", "start")

    def __init__(self, header: Header, data: bytes, device: Device, profile: Profile,
                 start: int = 0) -> None:
        self.header = header
        """The request header."""
        self.data = data
        """The transport unit; the payload starts at ``start`` and runs to the end of the
        unit, since zcbor reads past ``len``."""
        self.start = start
        """Offset of the payload in ``data``."""
        self.device = device
        """The device to act on."""
        self.profile = profile
        """The board and firmware configuration."""
        self.effects: list[Effect] = []
        """Effects to hand to the transport."""

    @property
    def payload(self) -> bytes:
        """The payload bytes (to the end of the unit)."""
        return self.data[self.start:]

    def fields(self, schema: Mapping[str, Check]) -> dict[str, Any]:
        """Decode the request map as ``zcbor_map_decode_bulk`` does.

        Known keys are checked against ``schema`` and returned; unknown keys are skipped. No
        map, a non-text key, a malformed item, a wrong type or a repeated known key all raise
        ``MgmtError(EINVAL)``.
        """
        try:
            pairs = decode_map(self.data, self.start)
        except DecodeError:
            raise MgmtError(MgmtErr.EINVAL) from None
        found: dict[str, Any] = {}
        for key, value in pairs:
            if type(key) is not str:
                raise MgmtError(MgmtErr.EINVAL)
            check = schema.get(key)
            if check is None:
                continue
            if key in found or not check(value):
                raise MgmtError(MgmtErr.EINVAL)
            found[key] = value
        return found


@record
class Handler(Record):
    """The read and write functions of one command (either may be absent)."""

    read: HandlerFn | None = None
    """Handler for op READ."""
    write: HandlerFn | None = None
    """Handler for op WRITE."""


class GroupHandlers:
    """The handlers one group module implements, keyed by the catalog's command names."""

    def __init__(self, name: str) -> None:
        self.info: GroupInfo = GROUPS[name]
        self.name = name
        self.handlers: dict[str, Handler] = {}

    def _register(self, command: str, op: str) -> Callable[[HandlerFn], HandlerFn]:
        if command not in self.info.commands:
            raise KeyError(f"{self.name} has no command {command!r} in the catalog")

        def decorate(fn: HandlerFn) -> HandlerFn:
            setattr(self.handlers.setdefault(command, Handler()), op, fn)
            return fn
        return decorate

    def read(self, command: str) -> Callable[[HandlerFn], HandlerFn]:
        """Register the READ handler of ``command``."""
        return self._register(command, "read")

    def write(self, command: str) -> Callable[[HandlerFn], HandlerFn]:
        """Register the WRITE handler of ``command``."""
        return self._register(command, "write")


@frozen
class RegisteredGroup(Frozen):
    """A group as compiled into one firmware build."""

    info: GroupInfo
    """Catalog entry."""
    handlers: dict[int, Handler]
    """Command id -> handler, only the commands the build enables and smpsim implements."""
    table_size: int
    """Size of Zephyr's handler array: highest enabled command id + 1 (enum details)."""


class Dispatcher:
    """The handler table of one build: enabled groups in registration (link) order."""

    def __init__(self, profile: Profile, implemented: Mapping[str, GroupHandlers]) -> None:
        groups: list[RegisteredGroup] = []
        for name, commands in profile.firmware.groups.items():
            info = GROUPS[name]
            module = implemented.get(name)
            handlers = {}
            for command in commands:
                if module is not None and command in module.handlers:
                    handlers[info.commands[command]] = module.handlers[command]
            size = max((info.commands[c] for c in commands), default=-1) + 1
            groups.append(RegisteredGroup(info, handlers, size))
        # MCUMGR_HANDLER_DEFINE entries are iterable sections, which the linker sorts by name.
        self.groups = sorted(groups, key=lambda g: g.info.symbol)
        self.table: dict[tuple[int, int], Handler] = {
            (g.info.group_id, cmd): h for g in self.groups for cmd, h in g.handlers.items()}
        """(group id, command id) -> handler, for the request path to look up without a call."""

    def lookup(self, group: int, cmd: int) -> Handler | None:
        """The handler for (group, cmd), or ``None`` when the build has none."""
        return self.table.get((group, cmd))
