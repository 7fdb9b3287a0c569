"""Every SMP error code with Zephyr's names and numbers, and the v1 translation of group errors.

Two kinds of error reach the wire (Zephyr 4.4.0: ``include/zephyr/mgmt/mcumgr/mgmt/mgmt_defines.h``,
``subsys/mgmt/mcumgr/smp/src/smp.c``):

* a generic ``MGMT_ERR_*`` code, sent as ``{"rc": n}`` (plus ``"rsn"`` on verbose builds) in both
  SMP versions, replacing whatever the handler had written;
* a group error, sent in SMP v2 as ``{"err": {"group": g, "rc": n}}`` inside a successful answer,
  and in SMP v1 translated by the group's table into a generic code.

Handlers raise :class:`MgmtError` or :class:`GroupError`; the server renders them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any


class MgmtErr(IntEnum):
    """``enum mcumgr_err_t``: the generic result codes sent as ``rc``."""

    EOK = 0
    """Success; never sent by smp_svr (no legacy rc behaviour)."""
    EUNKNOWN = 1
    """Unknown error; the default translation of most group errors."""
    ENOMEM = 2
    """No buffer for the response."""
    EINVAL = 3
    """CBOR decode failure, wrong value type, missing mandatory key or empty payload."""
    ETIMEOUT = 4
    """Operation timed out."""
    ENOENT = 5
    """No such entry; the translation of "not found" group errors."""
    EBADSTATE = 6
    """Current state disallows the command."""
    EMSGSIZE = 7
    """The response did not fit the response buffer."""
    ENOTSUP = 8
    """Unknown group, command, or op."""
    ECORRUPT = 9
    """The header length promises more bytes than the unit holds."""
    EBUSY = 10
    """Busy (a lock could not be taken in time)."""
    EACCESSDENIED = 11
    """Refused by an access hook."""
    UNSUPPORTED_TOO_OLD = 12
    """SMP v1 request to a build without the original protocol."""
    UNSUPPORTED_TOO_NEW = 13
    """Header version 2 or 3."""
    EPERUSER = 256
    """First code available to user-defined groups."""


class OsMgmtErr(IntEnum):
    """``os_mgmt_err_code_t`` (group 0)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    INVALID_FORMAT = 2
    """os info: an unknown format letter."""
    QUERY_YIELDS_NO_ANSWER = 3
    """bootloader info: a query with no answer."""
    RTC_NOT_SET = 4
    """datetime get: the RTC was never set."""
    RTC_COMMAND_FAILED = 5
    """datetime: the RTC driver failed."""
    QUERY_RESPONSE_VALUE_NOT_VALID = 6
    """A query answer that is not valid."""


class ImgMgmtErr(IntEnum):
    """``img_mgmt_err_code_t`` (group 1)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    FLASH_CONFIG_QUERY_FAIL = 2
    """Flash configuration query failed."""
    NO_IMAGE = 3
    """No image in the slot."""
    NO_TLVS = 4
    """The image has no TLV area."""
    INVALID_TLV = 5
    """A TLV is malformed."""
    TLV_MULTIPLE_HASHES_FOUND = 6
    """More than one hash TLV."""
    TLV_INVALID_SIZE = 7
    """A TLV has the wrong size."""
    HASH_NOT_FOUND = 8
    """No slot holds an image with that hash."""
    NO_FREE_SLOT = 9
    """No slot may be written or erased."""
    FLASH_OPEN_FAILED = 10
    """The flash area could not be opened (e.g. an invalid slot number)."""
    FLASH_READ_FAILED = 11
    """Reading flash failed."""
    FLASH_WRITE_FAILED = 12
    """Writing flash failed."""
    FLASH_ERASE_FAILED = 13
    """Erasing flash failed."""
    INVALID_SLOT = 14
    """Invalid slot."""
    NO_FREE_MEMORY = 15
    """Out of memory."""
    FLASH_CONTEXT_ALREADY_SET = 16
    """Flash context already set."""
    FLASH_CONTEXT_NOT_SET = 17
    """Flash context not set."""
    FLASH_AREA_DEVICE_NULL = 18
    """The flash area has no device."""
    INVALID_PAGE_OFFSET = 19
    """Invalid page offset."""
    INVALID_OFFSET = 20
    """Upload without ``off``."""
    INVALID_LENGTH = 21
    """First upload chunk without ``len``."""
    INVALID_IMAGE_HEADER = 22
    """First upload chunk shorter than an image header."""
    INVALID_IMAGE_HEADER_MAGIC = 23
    """First upload chunk without the MCUboot magic."""
    INVALID_HASH = 24
    """A hash of the wrong length, or no hash where one is needed."""
    INVALID_FLASH_ADDRESS = 25
    """Invalid flash address."""
    VERSION_GET_FAILED = 26
    """The running version could not be read."""
    CURRENT_VERSION_IS_NEWER = 27
    """``upgrade`` requested and the new version is not newer."""
    IMAGE_ALREADY_PENDING = 28
    """Another image is already pending."""
    INVALID_IMAGE_VECTOR_TABLE = 29
    """Invalid vector table."""
    INVALID_IMAGE_TOO_LARGE = 30
    """The image does not fit the slot."""
    INVALID_IMAGE_DATA_OVERRUN = 31
    """A chunk runs past the announced length."""
    IMAGE_CONFIRMATION_DENIED = 32
    """Confirming a non-active image is not allowed."""
    IMAGE_SETTING_TEST_TO_ACTIVE_DENIED = 33
    """Testing the running image is not allowed."""
    ACTIVE_SLOT_NOT_KNOWN = 34
    """The active slot is not known."""


class StatMgmtErr(IntEnum):
    """``stat_mgmt_err_code_t`` (group 2)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    INVALID_GROUP = 2
    """Invalid group."""
    INVALID_STAT_NAME = 3
    """No statistics group of that name."""
    INVALID_STAT_SIZE = 4
    """Invalid statistic size."""
    WALK_ABORTED = 5
    """Walking the statistics was aborted."""


class SettingsMgmtErr(IntEnum):
    """``settings_mgmt_err_code_t`` (group 3)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    KEY_TOO_LONG = 2
    """The key is too long."""
    KEY_NOT_FOUND = 3
    """No such key."""
    READ_NOT_SUPPORTED = 4
    """The handler cannot read."""
    ROOT_KEY_NOT_FOUND = 5
    """No handler for the first path element."""
    WRITE_NOT_SUPPORTED = 6
    """The handler cannot write."""
    DELETE_NOT_SUPPORTED = 7
    """The handler cannot delete."""
    SAVE_NOT_SUPPORTED = 8
    """No save backend."""


class FsMgmtErr(IntEnum):
    """``fs_mgmt_err_code_t`` (group 8)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    FILE_INVALID_NAME = 2
    """Invalid path (e.g. relative)."""
    FILE_NOT_FOUND = 3
    """No such file."""
    FILE_IS_DIRECTORY = 4
    """The path is a directory."""
    FILE_OPEN_FAILED = 5
    """The file could not be opened."""
    FILE_SEEK_FAILED = 6
    """Seek failed."""
    FILE_READ_FAILED = 7
    """Read failed."""
    FILE_TRUNCATE_FAILED = 8
    """Truncate failed."""
    FILE_DELETE_FAILED = 9
    """Delete failed."""
    FILE_WRITE_FAILED = 10
    """Write failed (e.g. disk full)."""
    FILE_OFFSET_NOT_VALID = 11
    """Upload offset is not the expected one."""
    FILE_OFFSET_LARGER_THAN_FILE = 12
    """Offset past the end of the file."""
    CHECKSUM_HASH_NOT_FOUND = 13
    """Unknown hash or checksum type."""
    MOUNT_POINT_NOT_FOUND = 14
    """No file system mounted there."""
    READ_ONLY_FILESYSTEM = 15
    """The file system is read-only."""
    FILE_EMPTY = 16
    """The file is empty."""


class ShellMgmtErr(IntEnum):
    """``shell_mgmt_err_code_t`` (group 9)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    COMMAND_TOO_LONG = 2
    """The command line does not fit the shell buffer."""
    EMPTY_COMMAND = 3
    """``argv`` is empty."""


class EnumMgmtErr(IntEnum):
    """``enum_mgmt_err_code_t`` (group 10)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    TOO_MANY_GROUP_ENTRIES = 2
    """Too many groups."""
    INSUFFICIENT_HEAP_FOR_ENTRIES = 3
    """Not enough heap."""
    INDEX_TOO_LARGE = 4
    """``index`` past the last group."""


class ZephyrBasicErr(IntEnum):
    """``zephyr_basic_group_err_code_t`` (group 63)."""

    OK = 0
    """No error."""
    UNKNOWN = 1
    """Unknown error."""
    FLASH_OPEN_FAILED = 2
    """The storage partition could not be opened."""
    FLASH_CONFIG_QUERY_FAIL = 3
    """Flash configuration query failed."""
    FLASH_ERASE_FAILED = 4
    """Erasing the storage partition failed."""


_E = MgmtErr

# Per group: group error -> MGMT_ERR for SMP v1 answers; codes not listed become EUNKNOWN.
V1_TRANSLATION: Mapping[int, Mapping[int, int]] = {
    0: {OsMgmtErr.INVALID_FORMAT: _E.EINVAL, OsMgmtErr.QUERY_YIELDS_NO_ANSWER: _E.ENOENT,
        OsMgmtErr.RTC_NOT_SET: _E.ENOENT},
    1: {ImgMgmtErr.NO_IMAGE: _E.ENOENT, ImgMgmtErr.NO_TLVS: _E.ENOENT,
        ImgMgmtErr.NO_FREE_SLOT: _E.EBADSTATE, ImgMgmtErr.CURRENT_VERSION_IS_NEWER: _E.EBADSTATE,
        ImgMgmtErr.IMAGE_ALREADY_PENDING: _E.EBADSTATE, ImgMgmtErr.NO_FREE_MEMORY: _E.ENOMEM,
        ImgMgmtErr.INVALID_SLOT: _E.EINVAL, ImgMgmtErr.INVALID_PAGE_OFFSET: _E.EINVAL,
        ImgMgmtErr.INVALID_OFFSET: _E.EINVAL, ImgMgmtErr.INVALID_LENGTH: _E.EINVAL,
        ImgMgmtErr.INVALID_IMAGE_HEADER: _E.EINVAL, ImgMgmtErr.INVALID_HASH: _E.EINVAL,
        ImgMgmtErr.INVALID_FLASH_ADDRESS: _E.EINVAL},
    2: {StatMgmtErr.INVALID_GROUP: _E.ENOENT, StatMgmtErr.INVALID_STAT_NAME: _E.ENOENT,
        StatMgmtErr.INVALID_STAT_SIZE: _E.EINVAL},
    3: {SettingsMgmtErr.KEY_TOO_LONG: _E.EINVAL, SettingsMgmtErr.KEY_NOT_FOUND: _E.ENOENT,
        SettingsMgmtErr.READ_NOT_SUPPORTED: _E.ENOENT},
    8: {FsMgmtErr.FILE_INVALID_NAME: _E.EINVAL, FsMgmtErr.CHECKSUM_HASH_NOT_FOUND: _E.EINVAL,
        FsMgmtErr.FILE_NOT_FOUND: _E.ENOENT, FsMgmtErr.MOUNT_POINT_NOT_FOUND: _E.ENOENT},
    9: {ShellMgmtErr.COMMAND_TOO_LONG: _E.EINVAL, ShellMgmtErr.EMPTY_COMMAND: _E.EINVAL},
    10: {EnumMgmtErr.TOO_MANY_GROUP_ENTRIES: _E.EINVAL},
    # Upstream oddity kept as is: two erase failures translate to EOK.
    63: {ZephyrBasicErr.FLASH_OPEN_FAILED: _E.ENOENT,
         ZephyrBasicErr.FLASH_CONFIG_QUERY_FAIL: _E.EOK,
         ZephyrBasicErr.FLASH_ERASE_FAILED: _E.EOK},
}


def translate_v1(group: int, rc: int) -> int:
    """The generic code an SMP v1 answer carries for group error ``rc`` of ``group``."""
    return int(V1_TRANSLATION.get(group, {}).get(rc, MgmtErr.EUNKNOWN))


class MgmtError(Exception):
    """A handler result sent as ``{"rc": rc}`` (+ ``rsn`` on verbose builds)."""

    def __init__(self, rc: int, rsn: str | None = None) -> None:
        super().__init__(rc, rsn)
        self.rc = int(rc)
        self.rsn = rsn


class GroupError(Exception):
    """A group error: v2 ``{"err": {"group", "rc"}, **extra}``, v1 the translated ``rc``.

    ``extra`` holds keys Zephyr writes after ``err`` in the same map (fs upload's ``len``).
    """

    def __init__(self, rc: int, rsn: str | None = None,
                 extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(rc, rsn)
        self.rc = int(rc)
        self.rsn = rsn
        self.extra = dict(extra) if extra else {}
