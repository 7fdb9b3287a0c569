"""Profiles: a board (flash geometry and timings, boot time) plus a firmware configuration.

A profile is a TOML file. ``extends = "other"`` starts from another profile (built-in name or a
path relative to the file) and merges tables key by key; arrays and the ``firmware.groups``
table replace. Every key is checked:
an unknown key, a wrong type or an unknown group or command is a :class:`ConfigError` that
names the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from smpsim.errors import ConfigError
from smpsim.mcumgr.catalog import GROUPS

DEFAULT_PROFILE = "nrf52840dk"


@dataclass(frozen=True)
class SectorGroup:
    """A run of equal sectors in a mixed layout (STM32F4: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB)."""

    size: int
    """Sector size in bytes."""
    count: int
    """How many such sectors follow."""
    erase_ms: float
    """Time to erase one of them."""


@dataclass(frozen=True)
class FlashGeometry:
    """The chip's flash as the board profile describes it."""

    size: int
    """Total bytes; the flash file has exactly this size."""
    erase_block: int = 4096
    """Erase unit (page or sector) in bytes."""
    write_block: int = 4
    """Write unit in bytes; writes are aligned to it."""
    erase_ms: float = 85.0
    """Time to erase one erase block."""
    write_us: float = 41.0
    """Time to program one write block."""
    sectors: tuple[SectorGroup, ...] = ()
    """Mixed sector layout from offset 0; empty means uniform ``erase_block`` sectors."""
    base: int = 0
    """Address of the flash in the CPU's memory map (0x08000000 on STM32), for .hex files."""


@dataclass(frozen=True)
class Partition:
    """A fixed partition of the flash (devicetree ``fixed-partitions``)."""

    name: str
    """``mcuboot``, ``slot0``/``slot1`` (image 0), ``slot2``/``slot3`` (image 1), ``scratch``,
    ``storage``."""
    offset: int
    """Start, from the start of the flash; on a sector edge."""
    size: int
    """Bytes; a whole number of sectors."""


@dataclass(frozen=True)
class Board:
    """The hardware."""

    target: str
    """Board target reported by os info ``i`` (``nrf52840dk/nrf52840``)."""
    arch: str
    """``CONFIG_ARCH``, reported by os info ``m``."""
    processor: str
    """Processor name, reported by os info ``p``."""
    flash: FlashGeometry
    """Internal flash."""
    boot_time_ms: float = 300.0
    """From reset to the application answering, not counting image checks or swaps."""
    partitions: tuple[Partition, ...] = ()
    """Flash partitions; the slots are needed for MCUboot and the img group."""
    watchdog_ms: float = 5000.0
    """Watchdog timeout: a hung application is reset after this long."""


@dataclass(frozen=True)
class Bootloader:
    """The MCUboot build on the board."""

    mode: str = "swap-move"
    """``swap-move``, ``swap-scratch``, ``swap-offset`` or ``overwrite-only``."""
    signature: str = "none"
    """``none`` (hash only), ``rsa-2048``, ``rsa-3072``, ``ecdsa-p256`` or ``ed25519``."""
    keys: tuple[str, ...] = ()
    """Public keys built into MCUboot: inline PEM text, or the name of one of smpsim's
    insecure test keys (``insecure-test-ecdsa-p256``)."""
    max_align: int = 8
    """``BOOT_MAX_ALIGN``: trailer cell size."""
    max_img_sectors: int = 0
    """``MCUBOOT_MAX_IMG_SECTORS``; 0 = slot size / sector size (Zephyr's automatic value)."""
    validate_primary: bool = True
    """``BOOT_VALIDATE_SLOT0``: check the primary image at every boot."""
    downgrade_prevention: bool = False
    """``MCUBOOT_DOWNGRADE_PREVENTION``: refuse an older image in the secondary slot."""
    version: str = "ee39e2d694bd"
    """MCUboot build shown in its banner."""
    start_ms: float = 30.0
    """From reset to MCUboot's boot decision."""
    hash_kib_per_s: float = 1024.0
    """SHA-256 throughput when validating an image."""
    verify_ms: float = 50.0
    """Time of one signature check."""


@dataclass(frozen=True)
class Thread:
    """A kernel thread as os taskstat reports it."""

    name: str
    """Thread name (may be empty)."""
    prio: int
    """Priority (signed: cooperative threads are negative)."""
    state: int
    """Raw ``thread_state`` bits (0 running, 2 pending, 4 sleeping, 128 queued)."""
    stack_size: int = 0
    """Stack size in bytes (reported in 4-byte words)."""
    stack_used: int = 0
    """Stack high-water mark in bytes (reported in 4-byte words)."""


@dataclass(frozen=True)
class LogLine:
    """One application log line printed at boot."""

    level: str
    """``inf``, ``wrn``, ``err`` or ``dbg``."""
    module: str
    """Log module name (``smp_sample``)."""
    text: str
    """The message."""


@dataclass(frozen=True)
class OsConfig:
    """Kconfig of the os group."""

    reset_ms: int = 250
    """``MCUMGR_GRP_OS_RESET_MS``: delay between the reset answer and the reboot."""
    reset_hook: bool = False
    """``MCUMGR_GRP_OS_RESET_HOOK``: the ``force`` key is decoded."""
    reset_boot_mode: bool = False
    """``MCUMGR_GRP_OS_RESET_BOOT_MODE``: the ``boot_mode`` key is decoded and retained."""
    taskstat_key: str = "name"
    """Taskstat map key: thread ``name``, ``prio`` or ``index``."""
    taskstat_stack_info: bool = True
    """``MCUMGR_GRP_OS_TASKSTAT_STACK_INFO``: ``stksiz`` and ``stkuse`` are sent."""
    datetime_ms: bool = False
    """``MCUMGR_GRP_OS_DATETIME_MS``: milliseconds in datetime get and set."""
    info_max_response: int = 256
    """``MCUMGR_GRP_OS_INFO_MAX_RESPONSE_SIZE``."""
    bootloader_mode: int = 3
    """MCUboot mode answered to bootloader info ``mode`` (3 swap using move)."""
    no_downgrade: bool = False
    """MCUboot downgrade prevention, reported as ``no-downgrade``."""


@dataclass(frozen=True)
class ImgConfig:
    """Kconfig of the img group."""

    erase_progressively: bool = False
    """``IMG_ERASE_PROGRESSIVELY``: erase sector by sector while uploading, not all at first."""
    image_check: bool = False
    """``IMG_ENABLE_IMAGE_CHECK``: the last upload answer carries ``match``."""
    allow_erase_pending: bool = True
    """``MCUMGR_GRP_IMG_ALLOW_ERASE_PENDING`` (Kconfig default y): a pending slot may be erased
    or overwritten."""
    frugal_list: bool = False
    """``MCUMGR_GRP_IMG_FRUGAL_LIST``: state read omits false flags and splitStatus."""


@dataclass(frozen=True)
class ShellDevice:
    """A device as the shell's ``device list`` shows it (``z_device_get_all_static`` order)."""

    name: str
    """Device name: the devicetree node name (``uart@40002000``)."""
    labels: tuple[str, ...] = ()
    """Devicetree node labels, shown with ``DEVICE_DT_METADATA``."""
    ready: bool = True
    """``device_is_ready``: READY, else DISABLED."""


@dataclass(frozen=True)
class ShellConfig:
    """Kconfig of the Zephyr shell: the SMP shell group's dummy backend and the UART shell."""

    commands: tuple[str, ...] = ()
    """Root commands compiled in; empty means smp_svr's set for the board (see
    ``smpsim.device.shell_cmds``)."""
    cmd_buff_size: int = 256
    """``SHELL_CMD_BUFF_SIZE``: longest command line plus its terminator."""
    dummy_buf_size: int = 512
    """``SHELL_BACKEND_DUMMY_BUF_SIZE``: the SMP shell group keeps this much output, less one."""
    argc_max: int = 20
    """``SHELL_ARGC_MAX``."""
    prompt: str = "uart:~$ "
    """``SHELL_PROMPT_UART``."""
    dummy_prompt: str = "~$ "
    """``SHELL_PROMPT_DUMMY``."""
    terminal_width: int = 80
    """``SHELL_DEFAULT_TERMINAL_WIDTH``: where help text and echoed lines wrap."""
    history_size: int = 512
    """``SHELL_HISTORY_BUFFER`` in bytes; 0 disables history."""
    cycles_per_sec: int = 1_000_000
    """``SYS_CLOCK_HW_CYCLES_PER_SEC``, for ``kernel cycles``."""
    ticks_per_sec: int = 10_000
    """``SYS_CLOCK_TICKS_PER_SEC``, for thread timeouts in ``kernel thread list``."""
    isr_stack_size: int = 2048
    """``ISR_STACK_SIZE``, for ``kernel thread stacks``."""
    ram_base: int = 0x20000000
    """Where kernel objects are placed, for the addresses ``%p`` prints."""
    devices: tuple[ShellDevice, ...] = ()
    """What ``device list`` shows."""


SERIAL_TRANSPORTS = ("uart", "shell", "raw")
"""Serial transport kinds (see :class:`Serial`)."""


@dataclass(frozen=True)
class Serial:
    """The UART the build serves SMP on (smp_svr ``serial.conf``, ``shell.conf``,
    ``raw-serial.conf``), as ``smpsim run --serial`` puts it on a PTY or a real port."""

    transport: str = "uart"
    """``uart``: SMP over console (``MCUMGR_TRANSPORT_UART``), base64 lines between console
    text; ``shell``: the same lines inside the Zephyr shell (``MCUMGR_TRANSPORT_SHELL``);
    ``raw``: bare SMP packets (``MCUMGR_TRANSPORT_RAW_UART``), no console."""
    baud: int = 115200
    """Line speed (8N1: 10 bit times a byte); both directions are paced at it, times the time
    scale. 0: no line speed at all, as native_sim's PTY UART, which takes bytes in as fast as
    the host writes them (and so sees bursts)."""
    rx_buf_size: int = 128
    """``UART_MCUMGR_RX_BUF_SIZE``: longest line received, marker and ``\\n`` included; a
    longer line is dropped whole."""
    rx_buf_count: int = 2
    """``UART_MCUMGR_RX_BUF_COUNT``: lines held until the work queue decodes them. Only a line
    without speed (``baud`` 0) delivers lines faster than that: in a burst, lines past this
    many are lost, as on the native_sim fixtures."""
    console: bool = True
    """The console (MCUboot's and the application's boot log, log lines) shares this UART.
    False on native_sim, whose console is the process's stdout."""
    log_color: bool = True
    """``LOG_BACKEND_SHOW_COLOR``: log lines on this UART carry ANSI colours around the level
    and message (``ESC[0m<inf> ...ESC[0m``, errors red, warnings yellow)."""
    input_timeout_ms: float = 0.0
    """``MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS``: a partial raw packet is discarded
    when the next bytes come this much later; 0 disables the timeout."""


STATS_KINDS: dict[str, tuple[str, ...]] = {
    "smp_svr": ("ticks",),
    "flash_sim": ("bytes_read", "bytes_written", "double_writes", "flash_read_calls",
                  "flash_read_time_us", "flash_write_calls", "flash_write_time_us",
                  "flash_erase_calls", "flash_erase_time_us"),
    "flash_sim_thresholds": ("max_write_calls", "max_erase_calls", "max_len"),
    "none": (),
}
"""What increments a statistics group's counters -> the fields it knows, in Zephyr's order:
``smp_svr`` the sample's main loop, ``flash_sim`` and ``flash_sim_thresholds`` the native_sim
flash simulator driver (``drivers/flash/flash_simulator.c``), ``none`` counters nothing
increments (any field names)."""

STATS_UNITS_MAX = 256
"""``STATS_PAGE_COUNT_THRESHOLD``: the flash simulator tracks at most this many erase units."""


@dataclass(frozen=True)
class StatsGroup:
    """A statistics group the firmware registers (``STATS_INIT_AND_REG``)."""

    name: str
    """Registered name, as stat list shows it (``smp_svr_stats``)."""
    kind: str = "none"
    """What increments the counters: a key of :data:`STATS_KINDS`."""
    fields: tuple[str, ...] = ()
    """Field names in declaration order; empty means every field the source knows."""
    units: int = 0
    """Kind ``flash_sim`` only: per-unit fields ``erase_cycles_unit<N>`` then ``dirty_read_unit<N>``
    for the first N erase units (``FLASH_SIMULATOR_STAT_PAGE_COUNT``)."""

    @property
    def field_names(self) -> tuple[str, ...]:
        """Every field in walk order, per-unit fields included."""
        names = self.fields or STATS_KINDS.get(self.kind, ())
        units = tuple(f"erase_cycles_unit{i}" for i in range(self.units)) + tuple(
            f"dirty_read_unit{i}" for i in range(self.units))
        return tuple(names) + units


@dataclass(frozen=True)
class SettingsKey:
    """One key of a settings handler (``<handler>/<key>``)."""

    name: str
    """Key below the handler's subtree."""
    max_size: int = 32
    """Largest value ``h_set`` accepts; a longer one is refused with -EINVAL."""
    default: str = ""
    """Value (UTF-8 text) before anything is loaded from storage."""


@dataclass(frozen=True)
class SettingsHandler:
    """An application's settings handler (``SETTINGS_STATIC_HANDLER_DEFINE``)."""

    name: str
    """Subtree it serves (``app``, or nested such as ``app/net``)."""
    keys: tuple[SettingsKey, ...] = ()
    """Keys it knows."""
    read: bool = True
    """``h_get`` present; without it reads are READ_NOT_SUPPORTED."""
    write: bool = True
    """``h_set`` present; without it writes are WRITE_NOT_SUPPORTED and nothing loads."""
    delete: bool = True
    """Deleting its keys is allowed; false makes the settings access hook refuse it with
    DELETE_NOT_SUPPORTED."""
    export: bool = True
    """``h_export`` present: settings save stores its values."""


@dataclass(frozen=True)
class SettingsConfig:
    """The settings subsystem and the settings group's Kconfig."""

    partition: str = ""
    """Flash partition holding the settings log; empty: no storage backend (save and delete
    fail as on smp_svr's builds, whose settings have no backend)."""
    handlers: tuple[SettingsHandler, ...] = ()
    """Handlers the application registers; none on smp_svr."""
    name_len: int = 32
    """``MCUMGR_GRP_SETTINGS_NAME_LEN``: names this long or longer are KEY_TOO_LONG."""
    value_len: int = 32
    """``MCUMGR_GRP_SETTINGS_VALUE_LEN``: the most a read returns."""
    load_at_boot: bool = True
    """The application calls ``settings_load()`` in main."""


HASH_TYPES = ("crc32", "sha256")
"""Hash and checksum types the fs group can build in, in registration order."""


@dataclass(frozen=True)
class FsLog:
    """A log file the application keeps appending to, so there is something real to download."""

    path: str
    """Absolute path (under the mount point)."""
    interval_s: float = 60.0
    """A line is appended for each this much emulated uptime, the next time anything touches
    the file system (the application's writes are lived lazily); 0: one line per boot only."""
    max_size: int = 8192
    """A file about to grow past this is first renamed to ``<path>.1`` (one old generation)."""


@dataclass(frozen=True)
class FsFile:
    """A file the application creates when it is missing (after every format too)."""

    path: str
    """Absolute path (under the mount point)."""
    text: str = ""
    """Content, as UTF-8."""


@dataclass(frozen=True)
class FsConfig:
    """littlefs on the ``storage`` partition (``FILE_SYSTEM_LITTLEFS``, smp_svr mounting it in
    ``main``) and the fs group's Kconfig. Mounted at every boot when the build has the fs group."""

    mount_point: str = "/lfs1"
    """Where smp_svr mounts littlefs; empty: no file system at all."""
    flash_controller: str = "flash-controller@0"
    """Devicetree name of the flash device, as littlefs's ``FS at <dev>:0x...`` log line says."""
    read_size: int = 16
    """``FS_LITTLEFS_READ_SIZE``."""
    prog_size: int = 16
    """``FS_LITTLEFS_PROG_SIZE``: littlefs programs multiples of this (a multiple of the flash
    write block)."""
    cache_size: int = 64
    """``FS_LITTLEFS_CACHE_SIZE``: programs go to the flash this many bytes at a time."""
    lookahead_size: int = 32
    """``FS_LITTLEFS_LOOKAHEAD_SIZE`` (a multiple of 8)."""
    block_cycles: int = 512
    """``FS_LITTLEFS_BLOCK_CYCLES``: erase cycles before littlefs moves metadata (wear)."""
    path_len: int = 64
    """``MCUMGR_GRP_FS_PATH_LEN``: longer paths are refused with rc 3."""
    max_file_size_4gb: bool = False
    """``MCUMGR_GRP_FS_MAX_FILE_SIZE_4GB``: 5 bytes reserved for offsets in a download
    response instead of 3 (a smaller download chunk)."""
    dl_chunk_size: int = 0
    """``MCUMGR_GRP_FS_DL_CHUNK_SIZE`` (with ``_LIMIT``): largest download chunk; 0: as much as
    the buffer holds."""
    hash_types: tuple[str, ...] = HASH_TYPES
    """``MCUMGR_GRP_FS_CHECKSUM_IEEE_CRC32`` / ``_HASH_SHA256``: the default type is crc32 when
    built in, else sha256."""
    idle_close_ms: float = 4000.0
    """``MCUMGR_GRP_FS_FILE_AUTOMATIC_IDLE_CLOSE_TIME``: an upload or download left idle this
    long has its file closed."""
    shell: bool = True
    """``FILE_SYSTEM_SHELL``: the shell has the ``fs`` command (with the fs group)."""
    files: tuple[FsFile, ...] = ()
    """Files the application creates when missing."""
    log: FsLog | None = None
    """A log file the application keeps."""


@dataclass(frozen=True)
class Ble:
    """The Bluetooth LE side of the build (smp_svr ``bt.conf``), as ``smpsim run --ble`` serves it
    through BlueZ. The defaults are that overlay's: what a board serving SMP over BLE runs."""

    name: str = "Zephyr"
    """``BT_DEVICE_NAME``: the name advertised (complete local name in the scan response)."""
    mtu: int = 498
    """``BT_L2CAP_TX_MTU``: the largest ATT MTU the board accepts; a connection uses the smaller
    of this and the client's. Requests come in writes of up to MTU - 3 bytes, responses go out in
    notifications of up to MTU - 3 bytes."""
    data_length: int = 251
    """``BT_CTLR_DATA_LENGTH_MAX``: payload bytes of one link-layer packet (27 without data
    length extension); an ATT PDU plus its 4-byte L2CAP header takes as many packets as it
    needs."""
    conn_interval_ms: float = 7.5
    """The connection interval during SMP traffic: what ``MCUMGR_TRANSPORT_BT_CONN_PARAM_CONTROL``
    asks of the central (7.5 to 11.25 ms) and a central usually grants."""
    packets_per_interval: int = 3
    """Link-layer packets each side gets through per connection event (251-byte packets at
    1M PHY: about 3 in 7.5 ms)."""
    reassembly: bool = True
    """``MCUMGR_TRANSPORT_BT_REASSEMBLY``: a request may span several writes, joined by the
    header's length; off, every write must hold whole packets."""


@dataclass(frozen=True)
class Firmware:
    """The smp_svr build: Kconfig, strings and buffers."""

    kernel_version: str
    """Zephyr version (os info ``v``, shell ``kernel version``)."""
    build_version: str
    """``BUILD_VERSION`` (os info ``r``, boot banner)."""
    buf_size: int
    """``MCUMGR_TRANSPORT_NETBUF_SIZE``: largest request and response frame."""
    buf_count: int
    """``MCUMGR_TRANSPORT_NETBUF_COUNT``."""
    groups: dict[str, tuple[str, ...]]
    """Enabled groups and, for each, its enabled commands (names from the catalog)."""
    build_date: str | None = None
    """``__DATE__ __TIME__`` string for os info ``b``; absent: ``b`` is refused."""
    node_name: str = "unknown"
    """Hostname or Bluetooth name for os info ``n``."""
    original_protocol: bool = True
    """``MCUMGR_SMP_SUPPORT_ORIGINAL_PROTOCOL``: SMP v1 requests are served."""
    verbose_errors: bool = False
    """``MCUMGR_SMP_VERBOSE_ERR_RESPONSE``: ``rsn`` follows ``rc``."""
    udp_mtu: int = 1500
    """``MCUMGR_TRANSPORT_UDP_MTU``: longer datagrams are truncated."""
    ble: Ble = field(default_factory=Ble)
    """The Bluetooth LE transport (``smpsim run --ble``)."""
    os: OsConfig = field(default_factory=OsConfig)
    """os group options."""
    img: ImgConfig = field(default_factory=ImgConfig)
    """img group options."""
    shell: ShellConfig = field(default_factory=ShellConfig)
    """Shell options (shell group and shell transport)."""
    serial: Serial = field(default_factory=Serial)
    """The serial line (``smpsim run --serial``)."""
    fs: FsConfig = field(default_factory=FsConfig)
    """The file system and the fs group's options."""
    threads: tuple[Thread, ...] = ()
    """Threads in ``k_thread_foreach`` order."""
    boot_log: tuple[LogLine, ...] = ()
    """Application log lines after the Zephyr banner."""
    stats: tuple[StatsGroup, ...] = (StatsGroup("smp_svr_stats", "smp_svr"),)
    """Statistics groups in registration order (stat list, the shell's ``stats list``)."""
    settings: SettingsConfig = field(default_factory=SettingsConfig)
    """The settings store and its handlers."""


@dataclass(frozen=True)
class Profile:
    """A board running a firmware build."""

    name: str
    """Profile name."""
    board: Board
    """Hardware."""
    firmware: Firmware
    """Firmware build."""
    mcuboot: Bootloader | None = None
    """The bootloader; ``None`` for a board without MCUboot (native_sim)."""
    description: str = ""
    """One line for ``smpsim profiles``."""
    source: str = ""
    """Where the profile was loaded from."""

    def enabled(self, group: str, command: str) -> bool:
        """Whether the build serves ``command`` of ``group``."""
        return command in self.firmware.groups.get(group, ())


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
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, bool):
        raise ConfigError(f"{where} must be an integer, not a boolean")
    if not isinstance(value, tp):
        raise ConfigError(f"{where} must be {_type_name(tp)}, not {type(value).__name__}")
    return value


def _build(cls: Any, table: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    for key in table:
        if key not in known:
            raise ConfigError(f"unknown key {where}.{key}" if where else f"unknown key {key}")
    args = {}
    for name, f in known.items():
        path = f"{where}.{name}" if where else name
        if name in table:
            args[name] = _convert(hints[name], table[name], path)
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


def _builtin_dir() -> Any:
    return resources.files("smpsim") / "profiles"


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with smpsim."""
    return sorted(p.name[:-5] for p in _builtin_dir().iterdir() if p.name.endswith(".toml"))


def _read_table(ref: str, relative_to: Path | None,
                seen: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    if ref.endswith(".toml"):
        path = Path(ref) if relative_to is None else relative_to / ref
        try:
            text, source = path.read_text(encoding="utf-8"), str(path.resolve())
        except OSError as exc:
            raise ConfigError(f"cannot read profile {path}: {exc.strerror}") from exc
        base_dir: Path | None = path.parent
    else:
        resource = _builtin_dir() / f"{ref}.toml"
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
    if profile.firmware.os.taskstat_key not in ("name", "prio", "index"):
        raise ConfigError("firmware.os.taskstat_key must be 'name', 'prio' or 'index'")
    if profile.firmware.buf_size < 16:
        raise ConfigError("firmware.buf_size must be at least 16")
    _check_serial(profile.firmware.serial)
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
        _check_groups(profile)
        _check_ble(profile.firmware.ble)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    return dataclasses.replace(profile, source=source)
