"""The shell's board commands: ``device``, ``date`` and ``mcuboot`` (``kernel`` is in
:mod:`smpsim.device.shell.commands.kernel`).

Texts follow Zephyr's ``subsys/shell/modules`` (``device_service.c``, ``date_service.c``) and
``subsys/dfu/boot/mcuboot_shell.c``; the values come from the device model (the profile's
devices, the uptime, the slots and trailers in flash).
"""

from __future__ import annotations

from smpsim.device.errno import EINVAL, EIO, ENOENT
from smpsim.device.mcuboot.header import IMAGE_HEADER_SIZE, IMAGE_MAGIC, ImageHeader
from smpsim.device.mcuboot.trailer import Flag, Magic, SwapType, TrailerError
from smpsim.device.rtc import _civil_from_days, _days_from_civil
from smpsim.device.shell.commands.kernel import ParseError, strtoul
from smpsim.device.shell.core import NORMAL, Command, Shell, shell_ram

# ----------------------------------------------------------------------------- device

def _cmd_device_list(shell: Shell, argv: list[str]) -> int:
    shell.fprintf(NORMAL, "devices:\n")
    for dev in shell.config.devices:
        if len(argv) == 2 and argv[1] not in dev.name:
            continue
        shell.raw(f"- {dev.name} ({'READY' if dev.ready else 'DISABLED'})\n")
        if dev.labels:
            shell.raw(f"  DT node labels: {' '.join(dev.labels)}\n")
    return 0


def _device_names(shell: Shell) -> list[Command]:
    return [Command(d.name, "device") for d in shell.config.devices if d.ready]


DEVICE = (Command("device", "Device commands", subcmds=(
    Command("list", "List configured devices, with an optional filter\n"
            "Usage: [<device filter>]", _cmd_device_list, dynamic=_device_names,
            mandatory=1, optional=1),
)))


# ----------------------------------------------------------------------------- date

def _realtime(shell: Shell) -> int:
    return int(shell_ram(shell.device).realtime_offset_s + shell.device.uptime_s())


def _print_date(shell: Shell, epoch: int) -> None:
    days, rest = divmod(epoch, 86400)
    year, month, day = _civil_from_days(days)
    shell.print(f"{year}-{month:02d}-{day:02d} {rest // 3600:02d}:{rest // 60 % 60:02d}:"
                f"{rest % 60:02d} UTC")


def _parse_field(text: str, end: str) -> tuple[int, str] | None:
    """C ``strtol(…, 10)`` then the character after it must be ``end``: (value, rest)."""
    i = 0
    while i < len(text) and text[i] in " \t\n\v\f\r":
        i += 1
    start = i
    if i < len(text) and text[i] in "+-":
        i += 1
    digits = i
    while i < len(text) and text[i].isdigit():
        i += 1
    if i == digits or text[i:i + 1] != end:
        return None
    return int(text[start:i]), text[i + 1:]


def _cmd_date_set(shell: Shell, argv: list[str]) -> int:
    now = _realtime(shell)
    days, rest = divmod(now, 86400)
    year, month, day = _civil_from_days(days)
    fields = [rest // 3600, rest // 60 % 60, rest % 60]
    if len(argv) not in (2, 3):
        shell.help()
        return -EINVAL
    if len(argv) == 3:
        parsed = _parse_ymd(shell, argv[1])
        if parsed is None:
            shell.help()
            return -EINVAL
        year, month, day = parsed
    if not _parse_hms(shell, argv[-1], fields):
        shell.help()
        return -EINVAL
    hour, minute, second = fields
    epoch = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    shell_ram(shell.device).realtime_offset_s = epoch - shell.device.uptime_s()
    _print_date(shell, epoch)
    return 0


def _parse_ymd(shell: Shell, text: str) -> tuple[int, int, int] | None:
    year_rest = _parse_field(text, "-")
    if year_rest is None:
        return None
    month_rest = _parse_field(year_rest[1], "-")
    if month_rest is None:
        return None
    if not 1 <= month_rest[0] <= 12:
        shell.error("Invalid month")
        return None
    day_rest = _parse_field(month_rest[1] + "\0", "\0")
    if day_rest is None or day_rest[1]:
        return None
    if not 1 <= day_rest[0] <= 31:
        shell.error("Invalid day")
        return None
    return year_rest[0], month_rest[0], day_rest[0]


def _parse_hms(shell: Shell, text: str, fields: list[int]) -> bool:
    """H:M:S, :M:S or ::S; the fields left out keep their value."""
    for index, (name, high) in enumerate((("hour", 23), ("minute", 59))):
        if text.startswith(":"):
            text = text[1:]
            continue
        parsed = _parse_field(text, ":")
        if parsed is None:
            return False
        if not 0 <= parsed[0] <= high:
            shell.error(f"Invalid {name}")
            return False
        fields[index], text = parsed
    parsed = _parse_field(text + "\0", "\0")
    if parsed is None or parsed[1]:
        return False
    if not 0 <= parsed[0] <= 60:
        shell.error("Invalid second")
        return False
    fields[2] = parsed[0]
    return True


def _cmd_date_get(shell: Shell, argv: list[str]) -> int:
    _print_date(shell, _realtime(shell))
    return 0


DATE = (Command("date", "Date commands", subcmds=(
    Command("set", "[Y-m-d] <H:M:S>", _cmd_date_set),
    Command("get", "[none]", _cmd_date_get),
)))


# ----------------------------------------------------------------------------- mcuboot

_MAGIC = {Magic.GOOD: "good", Magic.BAD: "bad", Magic.UNSET: "unset"}
_FLAG = {Flag.SET: "set", Flag.BAD: "bad", Flag.UNSET: "unset"}
_SWAP: dict[int, str] = {SwapType.NONE: "none", SwapType.TEST: "test", SwapType.PERM: "perm",
         SwapType.REVERT: "revert", SwapType.FAIL: "fail"}


def _area_id(shell: Shell, name: str) -> int:
    """``FIXED_PARTITION_ID``: the partition's index in the devicetree."""
    names = [p.name for p in shell.device.profile.board.partitions]
    return names.index(name)


def _info_area(shell: Shell, label: str, slot: int) -> None:
    dfu = shell.device.dfu
    assert dfu is not None
    area = dfu.area(0, slot)
    assert area is not None
    area_id = _area_id(shell, area.name)
    raw = area.read(dfu.start(0, slot), IMAGE_HEADER_SIZE)
    header = ImageHeader.parse(raw)
    if header.magic != IMAGE_MAGIC or header.hdr_size < IMAGE_HEADER_SIZE:
        shell.error(f"failed to read {label} area ({area_id}) header: {-EIO}")
        return
    version = header.version
    shell.print(f"{label} area ({area_id}):")
    shell.print(f"  version: {version.major}.{version.minor}.{version.revision}+{version.build}")
    shell.print(f"  image size: {header.img_size}")
    state = dfu.trailer_state(0, slot)
    shell.print(f"  magic: {_MAGIC.get(state.magic, 'unknown')}")
    shell.print(f"  swap type: {_SWAP.get(state.swap_type, 'unknown')}")
    shell.print(f"  copy done: {_FLAG.get(state.copy_done, 'unknown')}")
    shell.print(f"  image ok: {_FLAG.get(state.image_ok, 'unknown')}")


def _cmd_mcuboot(shell: Shell, argv: list[str]) -> int:
    dfu = shell.device.dfu
    if dfu is None:
        return -ENOENT
    primary = dfu.trailer_state(0, 0)
    confirmed = primary.magic is Magic.UNSET or primary.image_ok is Flag.SET
    shell.print(f"swap type: {_SWAP.get(dfu.swap_type(0), 'unknown')}")
    shell.print(f"confirmed: {int(confirmed)}")
    for label, slot in (("primary", 0), ("secondary", 1)):
        shell.print("")
        _info_area(shell, label, slot)
    return 0


def _cmd_confirm(shell: Shell, argv: list[str]) -> int:
    assert shell.device.dfu is not None
    try:
        shell.device.dfu.set_confirmed(0)
    except TrailerError:
        shell.error(f"failed to confirm: {-EIO}")
        return -EIO
    return 0


def _cmd_erase(shell: Shell, argv: list[str]) -> int:
    try:
        area_id = strtoul(argv[1], 0)
    except ParseError:
        area_id = 0  # strtoul without a check, as mcuboot_shell.c does
    partitions = shell.device.profile.board.partitions
    if area_id >= len(partitions):
        shell.error(f"failed to erase bank {area_id}")
        return -ENOENT
    area = shell.device.partitions.get(partitions[area_id].name)
    assert area is not None
    area.erase(0, area.size)
    return 0


def _cmd_request_upgrade(shell: Shell, argv: list[str]) -> int:
    assert shell.device.dfu is not None
    permanent = False
    if len(argv) > 1:
        if argv[1] != "permanent":
            shell.warn("invalid argument!")
            return -EINVAL
        permanent = True
    try:
        shell.device.dfu.set_pending(0, permanent)
    except TrailerError:
        shell.error("failed to request upgrade: 3")  # BOOT_EBADIMAGE
        return 3
    return 0


MCUBOOT = (Command("mcuboot", "MCUboot commands", _cmd_mcuboot, subcmds=(
    Command("confirm", "confirm", _cmd_confirm, mandatory=1),
    Command("erase", "erase <area_id>", _cmd_erase, mandatory=2),
    Command("request_upgrade", "request_upgrade [permanent]", _cmd_request_upgrade,
            mandatory=1, optional=1),
)))
