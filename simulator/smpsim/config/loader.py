"""Loading profiles: a board (flash geometry and timings, boot time) plus a firmware build.

A profile is a TOML file. ``extends = "other"`` starts from another profile (built-in name or a
path relative to the file) and merges tables key by key; arrays and the ``firmware.groups``
table replace. Every key is checked when the profile loads: an unknown key, a wrong type, a value
outside what the schema allows or an unknown group or command is a :class:`ConfigError` that
names the file, the key and what is allowed.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import itertools
import math
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from smpsim.config.catalog import GROUPS, SHELL_COMMANDS
from smpsim.config.schema import (
    HASH_TYPES,
    MCUBOOT_MODES,
    RECOVERY_FRAMINGS,
    SERIAL_TRANSPORTS,
    SIGNATURES,
    STATS_KINDS,
    STATS_UNITS_MAX,
    TASKSTAT_KEYS,
    TEST_KEYS,
    Ble,
    FlashGeometry,
    Profile,
    Serial,
    SerialRecovery,
    ShellConfig,
    StatsGroup,
)
from smpsim.config.schema import Board as BoardSpec
from smpsim.errors import ConfigError

DEFAULT_PROFILE = "nrf52840dk"
"""The board ``smpsim run`` starts when given no profile."""

INT_MIN, UINT_MAX = -(1 << 31), (1 << 32) - 1
_SIGNED = {"prio", "bootloader_mode", "block_cycles"}
"""Integer keys that may be negative (cooperative threads, MCUboot's 'unknown' mode, littlefs
without wear levelling)."""


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(inner, value, where)
    if origin is tuple:
        inner = typing.get_args(tp)[0]
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be an array")
        return tuple(_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        _, inner = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return {k: _convert(inner, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table")
        return _build(tp, value, where)
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        # Every float of a profile is a duration or a rate: nan, inf or a negative one would
        # stall, crash or spin the board's clock.
        if not 0 <= value < math.inf:
            raise ConfigError(f"{where} must be a finite number, 0 or more, not {value}")
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, not a boolean")
    if tp is int and isinstance(value, int):
        # Kconfig values are 32-bit; only a thread's priority and a mode number may be negative.
        low = INT_MIN if where.rsplit(".", 1)[-1] in _SIGNED else 0
        if not low <= value <= UINT_MAX:
            raise ConfigError(f"{where} must be from {low} to {UINT_MAX}, not {value}")
    if not isinstance(value, tp):
        raise ConfigError(f"{where} must be {_type_name(tp)}, not {type(value).__name__}")
    return value


@functools.cache
def _schema(cls: Any) -> dict[str, dataclasses.Field[Any]]:
    """A schema class's fields, each with its type (the schema's annotations are types, not
    strings: no ``typing.get_type_hints``, which cost 4 % of ``smpsim run``'s start)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    assert not any(isinstance(f.type, str) for f in fields.values()), cls
    return fields


def _build(cls: Any, table: dict[str, Any], where: str) -> Any:
    known = _schema(cls)
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key}" if where else f"unknown key {key}")
    args = {}
    for name, f in known.items():
        path = f"{where}.{name}" if where else name
        if name in table:
            args[name] = _convert(f.type, table[name], path)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing key {path}")
    return cls(**args)


# Tables an extending profile replaces whole: a build lists all of its groups.
_REPLACED = {("firmware", "groups")}


def _merge(base: dict[str, Any], over: dict[str, Any],
           path: tuple[str, ...] = ()) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if (isinstance(value, dict) and isinstance(out.get(key), dict)
                and (*path, key) not in _REPLACED):
            out[key] = _merge(out[key], value, (*path, key))
        else:
            out[key] = value
    return out


_BUILTIN_DIR = Path(__file__).resolve().parent.parent / "profiles"
"""The built-in profiles, installed beside the package's modules (a plain path: importing
``importlib.resources`` brings in tempfile, shutil and zipfile, 4 % of ``smpsim run``'s
start-up, issue 15)."""


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with smpsim."""
    return sorted(p.name[:-5] for p in _BUILTIN_DIR.iterdir() if p.name.endswith(".toml"))


def _read_table(ref: str, relative_to: Path | None,
                seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    if ref.endswith(".toml"):
        path = Path(ref) if relative_to is None else relative_to / ref
        try:
            text, source = path.read_text(encoding="utf-8"), str(path.resolve())
        except OSError as exc:
            raise ConfigError(f"cannot read profile {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"profile {path} is not UTF-8 text (TOML is): byte "
                              f"{exc.start} is {exc.object[exc.start]:#04x}") from None
        base_dir: Path | None = path.parent
    else:
        resource = _BUILTIN_DIR / f"{ref}.toml"
        if not resource.is_file():
            raise ConfigError(
                f"no built-in profile {ref!r}; known: {', '.join(builtin_profiles())}")
        text, source, base_dir = resource.read_text(encoding="utf-8"), f"<built-in {ref}>", None
    if source in seen:
        raise ConfigError(f"{source}: 'extends' loops back to itself")
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    parent = table.pop("extends", None)
    if parent is not None:
        if not isinstance(parent, str):
            raise ConfigError(f"{source}: extends must be a profile name or a .toml path")
        base, _ = _read_table(parent, base_dir, (*seen, source))
        table = _merge(base, table)
    return table, source


FLASH_SIZE_MAX = 256 << 20
"""The largest flash a profile may give a board (256 MiB): internal flash is a few MiB."""
SECTORS_MAX = 65536
"""The most sectors a flash may have (256 MiB of 4 KiB sectors)."""
SECTOR_MIN = 128
"""Smallest erase sector (STM32L0's 128-byte pages); MCUboot's swap status, an entry per
sector, would not fit a slot of much smaller ones."""
UDP_MTU_MIN = 16
"""``firmware.udp_mtu`` below this holds no SMP request worth the name (a header is 8 bytes)."""


def _check_flash(flash: FlashGeometry) -> list[int]:
    """Check the geometry; returns the sector edges (0 and the size included)."""
    if not 0 < flash.size <= FLASH_SIZE_MAX:
        raise ConfigError(f"board.flash.size must be from 1 to {FLASH_SIZE_MAX:#x} bytes "
                          f"(256 MiB), not {flash.size}")
    if flash.base < 0:
        raise ConfigError(f"board.flash.base must not be negative, not {flash.base}")
    if not 1 <= flash.write_block <= 4096:
        raise ConfigError(f"board.flash.write_block must be from 1 to 4096 bytes, not "
                          f"{flash.write_block}")
    if flash.sectors:
        for index, group in enumerate(flash.sectors):
            if group.size < SECTOR_MIN or group.size % flash.write_block or group.count < 1:
                raise ConfigError(f"board.flash.sectors[{index}]: size must be a multiple of "
                                  f"write_block ({flash.write_block}) of at least {SECTOR_MIN}, "
                                  "count at least 1")
        count = sum(g.count for g in flash.sectors)
        total = sum(g.size * g.count for g in flash.sectors)
        if total != flash.size:
            raise ConfigError(f"board.flash.sectors add up to {total:#x} bytes; "
                              f"board.flash.size is {flash.size:#x}")
    else:
        if flash.erase_block < SECTOR_MIN or flash.erase_block % flash.write_block \
                or flash.size % flash.erase_block:
            raise ConfigError(f"board.flash.erase_block must be a multiple of write_block "
                              f"({flash.write_block}) of at least {SECTOR_MIN} that divides "
                              f"size ({flash.size:#x}), not {flash.erase_block}")
        count = flash.size // flash.erase_block
    if count > SECTORS_MAX:
        raise ConfigError(f"board.flash has {count} sectors; at most {SECTORS_MAX} allowed "
                          "(larger erase blocks)")
    if not flash.sectors:
        return list(range(0, flash.size + 1, flash.erase_block))
    edges = [0]
    for group in flash.sectors:
        for _ in range(group.count):
            edges.append(edges[-1] + group.size)
    return edges


def _check_partitions(board: BoardSpec) -> None:
    edges = _check_flash(board.flash)
    size = board.flash.size
    names: set[str] = set()
    for index, part in enumerate(board.partitions):
        where = f"board.partitions[{index}] ({part.name!r})"
        if not part.name or part.name in names:
            raise ConfigError(f"{where}: a partition name must be non-empty and unique")
        names.add(part.name)
        end = part.offset + part.size
        if part.offset < 0 or part.size < 1 or end > size:
            raise ConfigError(f"{where}: {part.offset:#x}+{part.size:#x} must lie inside the "
                              f"flash (0x0..{size:#x})")
        for point in (part.offset, end):
            at = bisect.bisect_left(edges, point)
            if at == len(edges) or edges[at] != point:
                raise ConfigError(f"{where}: {point:#x} is not on a sector edge (partitions "
                                  "are whole sectors)")
    ordered = sorted(board.partitions, key=lambda p: p.offset)
    for first, second in itertools.pairwise(ordered):
        if first.offset + first.size > second.offset:
            raise ConfigError(f"board.partitions: {first.name!r} "
                              f"({first.offset:#x}+{first.size:#x}) overlaps {second.name!r} "
                              f"(from {second.offset:#x})")


MCUBOOT_LOG_LEVELS = ("inf", "dbg")
"""``mcuboot.log_level`` values."""


def _check_recovery(rec: SerialRecovery, profile: Profile) -> None:
    where = "mcuboot.serial_recovery"
    _check_choice(f"{where}.framing", rec.framing, RECOVERY_FRAMINGS)
    if not 0 <= rec.raw_input_timeout_ms <= 0xFFFFFFFF:
        raise ConfigError(f"{where}.raw_input_timeout_ms must be 0 (no timeout) or more")
    if not 8 <= rec.max_line_input_len <= 0xFFFF:
        raise ConfigError(f"{where}.max_line_input_len must be from 8 to 65535")
    if not rec.max_line_input_len <= rec.max_receive_size <= 65535:
        raise ConfigError(f"{where}.max_receive_size must be from max_line_input_len "
                          f"({rec.max_line_input_len}) to 65535 (Kconfig range)")
    if rec.params and rec.max_line_input_len != 128:
        raise ConfigError(f"{where}.params needs max_line_input_len = 128 "
                          "(BOOT_MGMT_MCUMGR_PARAMS depends on BOOT_MAX_LINE_INPUT_LEN = 128)")
    if rec.storage_erase and "storage" not in {p.name for p in profile.board.partitions}:
        raise ConfigError(f"{where}.storage_erase needs a 'storage' partition")


def _check_ble(ble: Ble) -> None:
    if not ble.name or not any(c.isascii() and c.isalnum() for c in ble.name):
        # BlueZ object paths are made from the name's letters and digits.
        raise ConfigError("firmware.ble.name must contain a letter or digit")
    if len(ble.name.encode("utf-8")) > 248:
        raise ConfigError("firmware.ble.name must be at most 248 bytes (BT_DEVICE_NAME_MAX)")
    if not 23 <= ble.mtu <= 517:
        raise ConfigError("firmware.ble.mtu must be from 23 to 517 (ATT MTU)")
    if not 27 <= ble.data_length <= 251:
        raise ConfigError("firmware.ble.data_length must be from 27 to 251")
    if not 7.5 <= ble.conn_interval_ms <= 4000:
        raise ConfigError("firmware.ble.conn_interval_ms must be from 7.5 to 4000")
    if ble.packets_per_interval < 1:
        raise ConfigError("firmware.ble.packets_per_interval must be at least 1")


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{key} must be one of {', '.join(map(repr, allowed))}, not {value!r}")


MAX_ALIGNS = (8, 16, 32)
"""``BOOT_MAX_ALIGN`` values MCUboot builds with."""


def _check_mcuboot(profile: Profile) -> None:
    mcuboot = profile.mcuboot
    if mcuboot is None:
        return
    _check_choice("mcuboot.mode", mcuboot.mode, MCUBOOT_MODES)
    names = {p.name for p in profile.board.partitions}
    if not {"slot0", "slot1"} <= names:
        raise ConfigError("board.partitions: MCUboot needs slot0 and slot1 (or no [mcuboot])")
    if mcuboot.mode == "swap-scratch" and "scratch" not in names:
        raise ConfigError("board.partitions: mcuboot.mode 'swap-scratch' needs a scratch "
                          "partition")
    if mcuboot.max_align not in MAX_ALIGNS:
        raise ConfigError(f"mcuboot.max_align must be one of {', '.join(map(str, MAX_ALIGNS))}"
                          f", not {mcuboot.max_align}")
    if profile.board.flash.write_block > mcuboot.max_align:
        raise ConfigError(f"board.flash.write_block ({profile.board.flash.write_block}) must "
                          f"not exceed mcuboot.max_align ({mcuboot.max_align})")
    if mcuboot.max_img_sectors < 0 or mcuboot.hash_kib_per_s <= 0:
        raise ConfigError("mcuboot.max_img_sectors must not be negative, hash_kib_per_s "
                          "must be positive")
    _check_choice("mcuboot.signature", mcuboot.signature, SIGNATURES)
    _check_choice("mcuboot.log_level", mcuboot.log_level, MCUBOOT_LOG_LEVELS)
    _check_recovery(mcuboot.serial_recovery, profile)
    for index, key in enumerate(mcuboot.keys):
        if not key.lstrip().startswith("-----BEGIN") and key not in TEST_KEYS:
            raise ConfigError(f"mcuboot.keys[{index}]: {key!r} is neither PEM text nor one of "
                              f"{', '.join(TEST_KEYS)}")


def _check_groups(profile: Profile) -> None:
    for group, commands in profile.firmware.groups.items():
        info = GROUPS.get(group)
        if info is None:
            raise ConfigError(f"firmware.groups: unknown group {group!r}; "
                              f"known: {', '.join(GROUPS)}")
        for command in commands:
            if command not in info.commands:
                raise ConfigError(f"firmware.groups.{group}: unknown command {command!r}; "
                                  f"known: {', '.join(info.commands)}")
    unknown_shell = [c for c in profile.firmware.shell.commands if c not in SHELL_COMMANDS]
    if unknown_shell:
        raise ConfigError(f"firmware.shell.commands: unknown {', '.join(unknown_shell)}; "
                          f"known: {', '.join(SHELL_COMMANDS)}")
    _check_choice("firmware.os.taskstat_key", profile.firmware.os.taskstat_key, TASKSTAT_KEYS)
    if profile.firmware.buf_size < 16:
        raise ConfigError("firmware.buf_size must be at least 16")
    if profile.firmware.buf_count < 1:
        raise ConfigError("firmware.buf_count must be at least 1")
    if profile.firmware.udp_mtu < UDP_MTU_MIN:
        raise ConfigError(f"firmware.udp_mtu must be at least {UDP_MTU_MIN} (an SMP header "
                          f"is 8 bytes), not {profile.firmware.udp_mtu}")
    _check_serial(profile.firmware.serial)
    _check_shell(profile.firmware.shell)
    _check_fs(profile)
    _check_stats(profile.firmware.stats)
    _check_settings(profile)


def _check_fs(profile: Profile) -> None:
    fs = profile.firmware.fs
    if not fs.mount_point or "fs" not in profile.firmware.groups:
        return
    mount = fs.mount_point
    if not mount.startswith("/") or len(mount) < 2 or mount.endswith("/") or "/" in mount[1:]:
        raise ConfigError(f"firmware.fs.mount_point must be like '/lfs1', not {mount!r}")
    if "storage" not in {p.name for p in profile.board.partitions}:
        raise ConfigError("firmware.groups.fs: littlefs needs a 'storage' partition "
                          "(or set firmware.fs.mount_point = '' for no file system)")
    if profile.firmware.settings.partition == "storage":
        raise ConfigError("firmware.settings.partition: 'storage' holds littlefs")
    sizes = (fs.read_size, fs.prog_size, fs.cache_size, fs.lookahead_size)
    if min(sizes) < 1 or fs.cache_size % fs.read_size or fs.cache_size % fs.prog_size \
            or fs.lookahead_size % 8:
        raise ConfigError("firmware.fs: read_size, prog_size, cache_size and lookahead_size "
                          "must be positive, cache_size a multiple of read_size and prog_size, "
                          "lookahead_size a multiple of 8")
    if fs.block_cycles == 0 or fs.block_cycles < -1:  # littlefs asserts on 0 (lfs_init)
        raise ConfigError(f"firmware.fs.block_cycles must be positive, or -1 for no wear "
                          f"levelling, not {fs.block_cycles}")
    if fs.prog_size % profile.board.flash.write_block:
        raise ConfigError("firmware.fs.prog_size must be a multiple of the flash write block")
    if fs.path_len < 1 or fs.dl_chunk_size < 0 or fs.idle_close_ms < 0:
        raise ConfigError("firmware.fs: path_len must be positive, dl_chunk_size and "
                          "idle_close_ms not negative")
    unknown = [t for t in fs.hash_types if t not in HASH_TYPES]
    if unknown:
        raise ConfigError(f"firmware.fs.hash_types: unknown {', '.join(unknown)}; "
                          f"known: {', '.join(HASH_TYPES)}")
    if not fs.hash_types and "hash" in profile.firmware.groups["fs"]:
        raise ConfigError("firmware.fs.hash_types: the hash command needs at least one type")
    files = [f.path for f in fs.files] + ([fs.log.path] if fs.log else [])
    for path in files:
        if not path.startswith(mount + "/") or len(path) <= len(mount) + 1:
            raise ConfigError(f"firmware.fs: {path!r} is not a file under {mount}")
    if fs.log is not None and (fs.log.interval_s < 0 or fs.log.max_size < 1):
        raise ConfigError("firmware.fs.log: interval_s must not be negative, max_size positive")


def _check_serial(serial: Serial) -> None:
    if serial.transport not in SERIAL_TRANSPORTS:
        raise ConfigError(f"firmware.serial.transport must be one of "
                          f"{', '.join(map(repr, SERIAL_TRANSPORTS))}, not {serial.transport!r}")
    if serial.baud < 0:
        raise ConfigError("firmware.serial.baud must be 0 (no line speed) or more")
    if serial.rx_buf_size < 8:
        raise ConfigError("firmware.serial.rx_buf_size must be at least 8")
    if serial.rx_buf_count < 1:
        raise ConfigError("firmware.serial.rx_buf_count must be at least 1")
    if serial.input_timeout_ms < 0:
        raise ConfigError("firmware.serial.input_timeout_ms must be 0 (none) or more")


def _check_shell(shell: ShellConfig) -> None:
    for key, least in (("cmd_buff_size", 2), ("dummy_buf_size", 1), ("argc_max", 1),
                       ("terminal_width", 1), ("cycles_per_sec", 1), ("ticks_per_sec", 1)):
        if getattr(shell, key) < least:
            raise ConfigError(f"firmware.shell.{key} must be at least {least}, not "
                              f"{getattr(shell, key)}")


def _check_stats(groups: tuple[StatsGroup, ...]) -> None:
    names = [g.name for g in groups]
    for group in groups:
        where = f"firmware.stats[{names.index(group.name)}]"
        if not group.name:
            raise ConfigError(f"{where}.name must not be empty")
        if names.count(group.name) > 1:
            raise ConfigError(f"{where}: statistics group {group.name!r} is registered twice")
        known = STATS_KINDS.get(group.kind)
        if known is None:
            raise ConfigError(f"{where}.kind must be one of "
                              f"{', '.join(map(repr, STATS_KINDS))}, not {group.kind!r}")
        unknown = [f for f in group.fields if known and f not in known]
        if unknown:
            raise ConfigError(f"{where}.fields: {', '.join(unknown)} not counted by kind "
                              f"{group.kind!r}; known: {', '.join(known)}")
        if len(set(group.field_names)) != len(group.field_names):
            raise ConfigError(f"{where}.fields: a field is named twice")
        if group.units and group.kind != "flash_sim":
            raise ConfigError(f"{where}.units is for the 'flash_sim' kind only")
        if not 0 <= group.units <= STATS_UNITS_MAX:
            raise ConfigError(f"{where}.units must be 0 to {STATS_UNITS_MAX}")


def _check_settings(profile: Profile) -> None:
    cfg = profile.firmware.settings
    if cfg.partition and cfg.partition not in {p.name for p in profile.board.partitions}:
        raise ConfigError(f"firmware.settings.partition: the board has no partition "
                          f"{cfg.partition!r}")
    if cfg.name_len < 1 or cfg.value_len < 1:
        raise ConfigError("firmware.settings.name_len and value_len must be at least 1")
    seen: set[str] = set()
    for index, handler in enumerate(cfg.handlers):
        where = f"firmware.settings.handlers[{index}]"
        if not handler.name or handler.name in seen:
            raise ConfigError(f"{where}.name must be non-empty and unique")
        seen.add(handler.name)
        keys = [k.name for k in handler.keys]
        if len(set(keys)) != len(keys) or "" in keys:
            raise ConfigError(f"{where}.keys: key names must be non-empty and unique")
        for key in handler.keys:
            if key.max_size < 0 or len(key.default.encode()) > key.max_size:
                raise ConfigError(f"{where}.keys.{key.name}: the default must fit max_size")


def load_profile(ref: str | Path) -> Profile:
    """Load a built-in profile by name, or a profile file by path (``*.toml``)."""
    ref = str(ref)
    table, source = _read_table(ref, None, ())
    table.setdefault("name", Path(ref).stem if ref.endswith(".toml") else ref)
    try:
        profile: Profile = _build(Profile, table, "")
        _check_partitions(profile.board)
        _check_groups(profile)
        _check_ble(profile.firmware.ble)
        _check_mcuboot(profile)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return dataclasses.replace(profile, source=source)
