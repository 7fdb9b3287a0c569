"""Group 3, settings: read, write, delete, commit, load and save on the device's settings.

* read (0, READ): ``{"name": tstr, "max_size": uint opt}`` -> ``{"val": bstr}``, plus
  ``"max_size": MCUMGR_GRP_SETTINGS_VALUE_LEN`` when the request asked for more than that;
* write (0, WRITE): ``{"name": tstr, "val": bstr}`` (a missing ``val`` writes an empty value);
* delete (1, WRITE): ``{"name": tstr}``;
* commit (2, WRITE), load (3, READ): the payload is ignored; ``{}``;
* save (3, WRITE): ``{"name": tstr opt}`` saves only the handlers at or below ``name``; the
  map is decoded, so no payload at all is rc 3 (Zephyr 4.4's ``settings_mgmt_save``).

A missing, empty or mistyped name (or value) is rc 3; a name of ``MCUMGR_GRP_SETTINGS_NAME_LEN``
bytes or more is KEY_TOO_LONG. The settings functions' errors become group errors as
``settings_mgmt.c`` maps them: -EINVAL (no handler for the name, or a value the handler refuses)
ROOT_KEY_NOT_FOUND, -ENOENT KEY_NOT_FOUND, -ENOTSUP READ/WRITE/DELETE_NOT_SUPPORTED; for save,
-ENOENT and -ENOTSUP (no storage backend) SAVE_NOT_SUPPORTED; anything else UNKNOWN. The name
is a C string to the settings subsystem: a NUL inside it ends it.
"""

from __future__ import annotations

from smpsim.device.errno import EINVAL, ENOENT, ENOTSUP
from smpsim.device.settings.store import SettingsError
from smpsim.mcumgr.dispatcher import BSTR, TSTR, UINT32, Body, Check, GroupHandlers, Request
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError
from smpsim.mcumgr.errors import SettingsMgmtErr as Err

SETTINGS = GroupHandlers("settings")


def _name(req: Request, schema: dict[str, Check]) -> tuple[str, dict[str, object]]:
    """The decoded request and its name, checked as every settings command checks it."""
    args = req.fields({"name": TSTR, **schema})
    name: str = args.get("name", "")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size == 0:
        raise MgmtError(MgmtErr.EINVAL)
    if size >= req.profile.firmware.settings.name_len:
        raise GroupError(Err.KEY_TOO_LONG)
    return name.split("\0", 1)[0], args


def _group_error(exc: SettingsError, not_supported: Err) -> GroupError:
    if exc.errno == EINVAL:
        return GroupError(Err.ROOT_KEY_NOT_FOUND)
    if exc.errno == ENOENT:
        return GroupError(Err.KEY_NOT_FOUND)
    if exc.errno == ENOTSUP:
        return GroupError(not_supported)
    return GroupError(Err.UNKNOWN)


@SETTINGS.read("read_write")
def read(req: Request) -> Body:
    """``{"name"[, "max_size"]}`` -> ``{"val"[, "max_size"]}``."""
    value_len = req.profile.firmware.settings.value_len
    name, args = _name(req, {"max_size": UINT32})
    max_size = args.get("max_size", value_len)
    assert isinstance(max_size, int)
    limited = max_size > value_len
    try:
        value = req.device.settings.get(name, min(max_size, value_len))
    except SettingsError as exc:
        raise _group_error(exc, Err.READ_NOT_SUPPORTED) from None
    if limited:
        return {"val": value, "max_size": value_len}
    return {"val": value}


@SETTINGS.write("read_write")
def write(req: Request) -> Body:
    """``{"name", "val"}``: the handler's RAM value (persisted by save)."""
    name, args = _name(req, {"val": BSTR})
    value = args.get("val", b"")
    assert isinstance(value, bytes)
    try:
        req.device.settings.set(name, value)
    except SettingsError as exc:
        raise _group_error(exc, Err.WRITE_NOT_SUPPORTED) from None
    return None


@SETTINGS.write("delete")
def delete(req: Request) -> Body:
    """``{"name"}``: remove the name from storage."""
    name, _ = _name(req, {})
    try:
        req.device.settings.delete(name)
    except SettingsError as exc:
        raise _group_error(exc, Err.DELETE_NOT_SUPPORTED) from None
    return None


@SETTINGS.write("commit")
def commit(req: Request) -> Body:
    """Every handler's commit; ``{}``."""
    req.device.settings.commit()
    return None


@SETTINGS.read("load_save")
def load(req: Request) -> Body:
    """Storage into the handlers; ``{}`` (settings_load's result is not looked at)."""
    req.device.settings.load()
    return None


@SETTINGS.write("load_save")
def save(req: Request) -> Body:
    """``{"name" opt}``: the handlers' values (those at or below ``name``) into storage; no
    backend: SAVE_NOT_SUPPORTED."""
    args = req.fields({"name": TSTR})
    subtree: str | None = None
    if "name" in args:
        subtree, _ = _name(req, {})
    try:
        req.device.settings.save(subtree)
    except SettingsError as exc:
        if exc.errno in (ENOENT, ENOTSUP):
            raise GroupError(Err.SAVE_NOT_SUPPORTED) from None
        raise GroupError(Err.UNKNOWN) from None
    return None
