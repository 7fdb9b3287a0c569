"""The profile schema: what a profile says about a board and its firmware build.

Every class here is a frozen dataclass whose fields are the profile's TOML keys; defaults are
smp_svr's and Zephyr's. Loading and checking a file is :mod:`smpsim.config.loader`, which reads
each key's type from its field: the annotations here are types, not strings (no ``from
__future__ import annotations``), so a class is defined before another names it.
"""

from dataclasses import field

from smpsim.records import Frozen, frozen


@frozen
class SectorGroup(Frozen):
    """A run of equal sectors in a mixed layout (STM32F4: 4 x 16 KiB, 1 x 64 KiB, 7 x 128 KiB)."""

    size: int
    """Sector size in bytes."""
    count: int
    """How many such sectors follow."""
    erase_ms: float
    """Time to erase one of them."""


@frozen
class FlashGeometry(Frozen):
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


@frozen
class Partition(Frozen):
    """A fixed partition of the flash (devicetree ``fixed-partitions``)."""

    name: str
    """``mcuboot``, ``slot0``/``slot1`` (image 0), ``slot2``/``slot3`` (image 1), ``scratch``,
    ``storage``."""
    offset: int
    """Start, from the start of the flash; on a sector edge."""
    size: int
    """Bytes; a whole number of sectors."""


@frozen
class Board(Frozen):
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


MCUBOOT_MODES = ("swap-move", "swap-scratch", "swap-offset", "overwrite-only",
                 "ram-load")
"""``mcuboot.mode``: MCUboot's upgrade strategies smpsim models."""
SIGNATURES = ("none", "rsa-2048", "rsa-3072", "ecdsa-p256", "ed25519")
"""``mcuboot.signature``: hash only, or the signature type MCUboot checks."""
TEST_KEYS = ("insecure-test-rsa-2048", "insecure-test-rsa-3072", "insecure-test-ecdsa-p256",
             "insecure-test-ed25519")
"""``mcuboot.keys`` names of smpsim's packaged insecure test keys (else inline PEM text)."""
TASKSTAT_KEYS = ("name", "prio", "index")
"""``firmware.os.taskstat_key``: what os taskstat keys its threads by."""


RECOVERY_FRAMINGS = ("console", "raw")
"""Serial recovery framings (see :class:`SerialRecovery`)."""


@frozen
class SerialRecovery(Frozen):
    """MCUboot's serial recovery (``MCUBOOT_SERIAL``, ``boot/boot_serial``): MCUboot's own small
    SMP server on the board's serial line. Every key is the Kconfig option of the same meaning,
    with MCUboot's Kconfig default."""

    enabled: bool = False
    """``MCUBOOT_SERIAL``."""
    framing: str = "console"
    """``console``: SMP over console lines (``06 09``/``04 14``, base64, CRC16); ``raw``:
    bare SMP packets (``BOOT_SERIAL_RAW_PROTOCOL``)."""
    raw_input_timeout_ms: int = 3000
    """``BOOT_SERIAL_RAW_PROTOCOL_INPUT_TIMEOUT_MS``: a partial raw packet is discarded after
    this much silence; 0: ``BOOT_SERIAL_RAW_PROTOCOL_INPUT_TIMEOUT`` off."""
    max_receive_size: int = 1024
    """``BOOT_SERIAL_MAX_RECEIVE_SIZE``: the decoded frame (console: length, packet and CRC)
    must fit this plus one byte; params reports it as ``buf_size``."""
    max_line_input_len: int = 128
    """``BOOT_MAX_LINE_INPUT_LEN``: bytes of a console line kept, ``\\n`` included."""
    params: bool = False
    """``BOOT_MGMT_MCUMGR_PARAMS``: os params (0/6) answers; needs 128-byte lines."""
    echo: bool = False
    """``BOOT_MGMT_ECHO``: os echo (0/0) answers."""
    image_hash: bool = True
    """``BOOT_SERIAL_IMG_GRP_HASH``: the image list carries each image's hash."""
    image_state: bool = False
    """``BOOT_SERIAL_IMG_GRP_IMAGE_STATE``: the list carries the state flags and img state
    write (test, confirm) answers."""
    slot_info: bool | None = None
    """``BOOT_SERIAL_IMG_GRP_SLOT_INFO``; unset: Kconfig's default, on with more than one
    image."""
    storage_erase: bool = False
    """``ENABLE_MGMT_PERUSER`` with ``BOOT_MGMT_CUSTOM_STORAGE_ERASE``: zephyr basic storage
    erase (63/0) wipes the ``storage`` partition."""
    erase_progressively: bool = False
    """``BOOT_ERASE_PROGRESSIVELY`` (Kconfig default y on Nordic and i.MX RT SoCs only):
    sectors are erased as chunks need them, not the whole slot at offset 0."""
    entrance_gpio: bool = True
    """``BOOT_SERIAL_ENTRANCE_GPIO``: the recovery button held at reset enters recovery."""
    boot_mode: bool = False
    """``BOOT_SERIAL_BOOT_MODE``: a retained boot mode 1 (``os reset`` with ``boot_mode``)
    enters recovery once."""
    no_application: bool = False
    """``BOOT_SERIAL_NO_APPLICATION``: no bootable image enters recovery."""


@frozen
class Bootloader(Frozen):
    """The MCUboot build on the board."""

    mode: str = "swap-move"
    """``swap-move``, ``swap-scratch``, ``swap-offset``, ``overwrite-only`` or ``ram-load``
    (``MCUBOOT_RAM_LOAD``: the image is copied to RAM at its header's load address and
    validated there)."""
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
    log_level: str = "inf"
    """``MCUBOOT_LOG_LEVEL``: ``inf`` (Zephyr's default for MCUboot) or ``dbg``, which adds
    MCUboot's ``D:`` lines."""
    log_area_ptr: int = 0
    """Debug lines print image 0's primary ``flash_area`` pointer (``%p``); this build's."""
    factory_image: bool = True
    """A new flash file gets the factory image in every primary slot; false: the slots start
    erased, as a board nobody programmed an application into."""
    serial_recovery: SerialRecovery = field(default_factory=SerialRecovery)
    """Serial recovery, MCUboot's own SMP server."""


@frozen
class Thread(Frozen):
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


@frozen
class LogLine(Frozen):
    """One application log line printed at boot."""

    level: str
    """``inf``, ``wrn``, ``err`` or ``dbg``."""
    module: str
    """Log module name (``smp_sample``)."""
    text: str
    """The message."""


@frozen
class OsConfig(Frozen):
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


@frozen
class ImgConfig(Frozen):
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


@frozen
class ShellDevice(Frozen):
    """A device as the shell's ``device list`` shows it (``z_device_get_all_static`` order)."""

    name: str
    """Device name: the devicetree node name (``uart@40002000``)."""
    labels: tuple[str, ...] = ()
    """Devicetree node labels, shown with ``DEVICE_DT_METADATA``."""
    ready: bool = True
    """``device_is_ready``: READY, else DISABLED."""


@frozen
class ShellConfig(Frozen):
    """Kconfig of the Zephyr shell: the SMP shell group's dummy backend and the UART shell."""

    commands: tuple[str, ...] = ()
    """Root commands compiled in (names of ``catalog.SHELL_COMMANDS``); empty means smp_svr's
    set for the board (see ``smpsim.device.shell.commands``)."""
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


@frozen
class Serial(Frozen):
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


@frozen
class StatsGroup(Frozen):
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


@frozen
class SettingsKey(Frozen):
    """One key of a settings handler (``<handler>/<key>``)."""

    name: str
    """Key below the handler's subtree."""
    max_size: int = 32
    """Largest value ``h_set`` accepts; a longer one is refused with -EINVAL."""
    default: str = ""
    """Value (UTF-8 text) before anything is loaded from storage."""


@frozen
class SettingsHandler(Frozen):
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


@frozen
class SettingsConfig(Frozen):
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


@frozen
class FsLog(Frozen):
    """A log file the application keeps appending to, so there is something real to download."""

    path: str
    """Absolute path (under the mount point)."""
    interval_s: float = 60.0
    """A line is appended for each this much emulated uptime, the next time anything touches
    the file system (the application's writes are lived lazily); 0: one line per boot only."""
    max_size: int = 8192
    """A file about to grow past this is first renamed to ``<path>.1`` (one old generation)."""


@frozen
class FsFile(Frozen):
    """A file the application creates when it is missing (after every format too)."""

    path: str
    """Absolute path (under the mount point)."""
    text: str = ""
    """Content, as UTF-8."""


@frozen
class FsConfig(Frozen):
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
    mounted_log_after_format_only: bool = False
    """The ``<point> mounted`` log line shows only after a format: a quirk of the mps2/an385
    fixtures' logs (every other build logs it at each mount)."""
    files: tuple[FsFile, ...] = ()
    """Files the application creates when missing."""
    log: FsLog | None = None
    """A log file the application keeps."""


@frozen
class Ble(Frozen):
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


@frozen
class Firmware(Frozen):
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


@frozen
class Profile(Frozen):
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


