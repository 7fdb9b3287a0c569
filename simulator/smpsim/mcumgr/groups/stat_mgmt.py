"""Group 2, statistics: show one group's fields, list the registered groups.

* show (0, READ): ``{"name": tstr}`` -> ``{"name": name, "fields": {field: uint, ...}}``. A
  missing, empty or non-text name, or one of ``MCUMGR_GRP_STAT_MAX_NAME_LEN`` bytes or more, is
  rc 3. No such group: the group error INVALID_STAT_NAME (v1: rc 5) and an error log line.
* list (1, READ): ``{"stat_list": [name, ...]}`` in registration order; the payload is ignored.

The name is a C string to the lookup (``strcmp``): a NUL inside it ends it there, while the
answer echoes the name as sent. Values are sent as 32-bit unsigned integers. A group too big for
the response buffer (the flash simulator's 521 fields) is rc 7, from the server's size check.
"""

from __future__ import annotations

from smpsim.mcumgr.dispatcher import TSTR, Body, GroupHandlers, Request
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError, StatMgmtErr

STAT = GroupHandlers("stat")

MAX_NAME_LEN = 32
"""``MCUMGR_GRP_STAT_MAX_NAME_LEN``: the name buffer, terminator included."""


@STAT.read("show")
def show(req: Request) -> Body:
    """``{"name"}`` -> ``{"name", "fields"}`` of that statistics group."""
    name = req.fields({"name": TSTR}).get("name", "")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size == 0 or size >= MAX_NAME_LEN:
        raise MgmtError(MgmtErr.EINVAL)
    lookup = name.split("\0", 1)[0]
    stats = req.device.stats
    group = stats.find(lookup)
    if group is None:
        req.device.console.log("err", "mcumgr_stat_grp", f"Invalid stat name: {lookup}")
        raise GroupError(StatMgmtErr.INVALID_STAT_NAME)
    return {"name": name, "fields": dict(stats.values(group))}


@STAT.read("list")
def stat_list(req: Request) -> Body:
    """``{"stat_list": [names]}`` in registration order."""
    return {"stat_list": [group.name for group in req.device.stats.groups]}
