"""Error codes and the SMP v1 translation of group errors (Zephyr 4.4.0's
``mgmt_defines.h`` and each group's ``*_mgmt_translate_error_code``)."""

from __future__ import annotations

import pytest

from smpsim.mcumgr.errors import (
    GroupError,
    MgmtErr,
    MgmtError,
    OsMgmtErr,
    translate_v1,
)


def test_generic_codes_have_zephyrs_numbers() -> None:
    assert {e.name: int(e) for e in MgmtErr} == {
        "EOK": 0, "EUNKNOWN": 1, "ENOMEM": 2, "EINVAL": 3, "ETIMEOUT": 4, "ENOENT": 5,
        "EBADSTATE": 6, "EMSGSIZE": 7, "ENOTSUP": 8, "ECORRUPT": 9, "EBUSY": 10,
        "EACCESSDENIED": 11, "UNSUPPORTED_TOO_OLD": 12, "UNSUPPORTED_TOO_NEW": 13,
        "EPERUSER": 256,
    }


def test_os_group_codes() -> None:
    assert {e.name: int(e) for e in OsMgmtErr} == {
        "OK": 0, "UNKNOWN": 1, "INVALID_FORMAT": 2, "QUERY_YIELDS_NO_ANSWER": 3,
        "RTC_NOT_SET": 4, "RTC_COMMAND_FAILED": 5, "QUERY_RESPONSE_VALUE_NOT_VALID": 6,
    }


@pytest.mark.parametrize(("group", "rc", "v1_rc"), [
    # os: 2 -> EINVAL [OBS]; 3, 4 -> ENOENT; the rest EUNKNOWN
    (0, 1, 1), (0, 2, 3), (0, 3, 5), (0, 4, 5), (0, 5, 1), (0, 6, 1),
    # img: observed 8 -> 1 and 23 -> 1; 9, 27, 28 -> EBADSTATE; 15 -> ENOMEM; 3, 4 -> ENOENT
    (1, 8, 1), (1, 23, 1), (1, 33, 1), (1, 30, 1), (1, 9, 6), (1, 27, 6), (1, 28, 6),
    (1, 15, 2), (1, 3, 5), (1, 4, 5), (1, 14, 3), (1, 19, 3), (1, 20, 3), (1, 21, 3),
    (1, 22, 3), (1, 24, 3), (1, 25, 3),
    # stat: 2, 3 -> ENOENT [OBS 3 -> 5]; 4 -> EINVAL
    (2, 2, 5), (2, 3, 5), (2, 4, 3), (2, 5, 1),
    # settings: 2 -> EINVAL; 3, 4 -> ENOENT; [OBS 5 -> 1, 3 -> 5, 8 -> 1]
    (3, 2, 3), (3, 3, 5), (3, 4, 5), (3, 5, 1), (3, 8, 1),
    # fs: 2, 13 -> EINVAL; 3, 14 -> ENOENT [OBS 3 -> 5]; [OBS 11 -> 1]
    (8, 2, 3), (8, 13, 3), (8, 3, 5), (8, 14, 5), (8, 11, 1), (8, 4, 1),
    # shell: 2, 3 -> EINVAL [OBS 3 -> 3]
    (9, 2, 3), (9, 3, 3), (9, 1, 1),
    # enum: 2 -> EINVAL; [OBS 4 -> 1]
    (10, 2, 3), (10, 4, 1), (10, 3, 1),
    # zephyr basic: 2 -> ENOENT; 3 and 4 -> EOK (upstream oddity)
    (63, 2, 5), (63, 3, 0), (63, 4, 0), (63, 1, 1),
])
def test_v1_translation_table(group: int, rc: int, v1_rc: int) -> None:
    assert translate_v1(group, rc) == v1_rc


def test_groups_without_a_table_translate_to_eunknown() -> None:
    assert translate_v1(64, 2) == MgmtErr.EUNKNOWN
    assert translate_v1(11, 3) == MgmtErr.EUNKNOWN


def test_translation_returns_plain_ints() -> None:
    assert type(translate_v1(0, 2)) is int


def test_mgmt_error_carries_rc_and_reason() -> None:
    exc = MgmtError(MgmtErr.EINVAL, "header malformed")
    assert (exc.rc, exc.rsn) == (3, "header malformed")
    assert type(exc.rc) is int
    assert MgmtError(8).rsn is None


def test_group_error_carries_rc_reason_and_extra_keys() -> None:
    exc = GroupError(11, extra={"len": 0})
    assert (exc.rc, exc.rsn, exc.extra) == (11, None, {"len": 0})
    assert GroupError(2).extra == {}
