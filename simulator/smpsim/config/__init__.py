"""Profiles: what board and firmware build a simulated board is.

:mod:`~smpsim.config.schema` is what a profile can say, :mod:`~smpsim.config.loader` reads and
checks a TOML file, :mod:`~smpsim.config.catalog` lists the SMP groups and commands a build can
enable. The names most code needs are re-exported here.
"""

from smpsim.config.loader import DEFAULT_PROFILE, builtin_profiles, load_profile
from smpsim.config.schema import (
    HASH_TYPES,
    SERIAL_TRANSPORTS,
    STATS_KINDS,
    Ble,
    Board,
    Bootloader,
    Firmware,
    FlashGeometry,
    FsConfig,
    FsFile,
    FsLog,
    ImgConfig,
    LogLine,
    OsConfig,
    Partition,
    Profile,
    SectorGroup,
    Serial,
    SerialRecovery,
    SettingsConfig,
    SettingsHandler,
    SettingsKey,
    ShellConfig,
    ShellDevice,
    StatsGroup,
    Thread,
)

__all__ = [
    "DEFAULT_PROFILE", "HASH_TYPES", "SERIAL_TRANSPORTS", "STATS_KINDS", "Ble", "Board",
    "Bootloader", "Firmware", "FlashGeometry", "FsConfig", "FsFile", "FsLog", "ImgConfig",
    "LogLine", "OsConfig", "Partition", "Profile", "SectorGroup", "Serial", "SerialRecovery",
    "SettingsConfig",
    "SettingsHandler", "SettingsKey", "ShellConfig", "ShellDevice", "StatsGroup", "Thread",
    "builtin_profiles", "load_profile",
]
