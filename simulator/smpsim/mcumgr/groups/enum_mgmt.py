"""Group 10, enumeration: the management groups the build registers, in registration order.

* count (0): ``{"count": n}``; list (1): ``{"groups": [id, ...]}``; both ignore the payload;
* single (2): ``{"index": uint opt}`` (default 0; above 65535 rc 3) -> ``{"group": id}``, plus
  ``"end": true`` for the last group; past the last: INDEX_TOO_LARGE (v1: rc 1);
* details (3): ``{"groups": [uint, ...] opt}`` -> ``{"groups": [{"group", "name",
  "handlers"}, ...]}`` for the groups in the filter (all when it is absent or empty), in
  registration order. Unknown ids are skipped; ids are compared on their low 16 bits (Zephyr
  keeps them in a ``uint16_t`` list); more than ``..._STACK_ENTRIES`` ids is
  TOO_MANY_GROUP_ENTRIES; ``groups`` that is not an array of uints is rc 3. ``handlers`` is the
  size of the group's handler table (highest command id + 1).

The order and the table sizes are the dispatcher's (:attr:`Dispatcher.groups`).

Unlike the other groups, enum_mgmt answers a failed encoding with ECORRUPT, not EMSGSIZE: an
answer that does not fit the response buffer is ``{"rc": 9}`` (details of every group on a
96-byte buffer). Only the final byte of the top-level map is written by the SMP layer after the
handler; if that one alone does not fit, the answer is rc 7 like any other.
"""

from __future__ import annotations

from typing import Any

from smpsim.mcumgr.codec import encode
from smpsim.mcumgr.dispatcher import (
    UINT32,
    Body,
    Check,
    Dispatcher,
    GroupHandlers,
    RegisteredGroup,
    Request,
)
from smpsim.mcumgr.errors import EnumMgmtErr, GroupError, MgmtErr, MgmtError
from smpsim.mcumgr.header import HEADER_SIZE

ENUM = GroupHandlers("enum")

MAX_GROUP_INDEX = 65535
"""``MAX_MCUMGR_GROUPS``: a larger ``index`` is refused outright."""
STACK_ENTRIES = 16
"""``MCUMGR_GRP_ENUM_DETAILS_BUFFER_TYPE_STACK_ENTRIES``: most ids the details filter holds."""

LIST: Check = lambda v: type(v) is list  # noqa: E731


def _groups(req: Request) -> list[RegisteredGroup]:
    # Registration order and table sizes follow from the profile alone, whichever handlers the
    # serving dispatcher has.
    return Dispatcher(req.profile, {}).groups


def _checked(req: Request, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` if the handler could encode it into the response buffer, else rc 9."""
    room = req.profile.firmware.buf_size - HEADER_SIZE
    if len(encode(body)) - 1 > room:  # all but the top-level map's final 0xff
        raise MgmtError(MgmtErr.ECORRUPT)
    return body


@ENUM.read("count")
def count(req: Request) -> Body:
    """``{"count"}``: how many groups are registered."""
    return _checked(req, {"count": len(_groups(req))})


@ENUM.read("list")
def group_list(req: Request) -> Body:
    """``{"groups": [ids]}`` in registration order."""
    return _checked(req, {"groups": [g.info.group_id for g in _groups(req)]})


@ENUM.read("single")
def single(req: Request) -> Body:
    """``{"index"}`` -> ``{"group"[, "end": true]}``."""
    index = req.fields({"index": UINT32}).get("index", 0)
    if index > MAX_GROUP_INDEX:
        raise MgmtError(MgmtErr.EINVAL)
    groups = _groups(req)
    if index >= len(groups):
        raise GroupError(EnumMgmtErr.INDEX_TOO_LARGE)
    body: dict[str, Any] = {"group": groups[index].info.group_id}
    if index == len(groups) - 1:
        body["end"] = True
    return _checked(req, body)


@ENUM.read("details")
def details(req: Request) -> Body:
    """``{"groups"}`` filter -> name and handler count of each group."""
    wanted = req.fields({"groups": LIST}).get("groups", [])
    if len(wanted) > STACK_ENTRIES:
        raise GroupError(EnumMgmtErr.TOO_MANY_GROUP_ENTRIES)
    if not all(UINT32(v) for v in wanted):
        raise MgmtError(MgmtErr.EINVAL)
    allowed = {v & 0xFFFF for v in wanted}
    entries = [{"group": g.info.group_id, "name": g.info.name, "handlers": g.table_size}
               for g in _groups(req) if not allowed or g.info.group_id in allowed]
    return _checked(req, {"groups": entries})
