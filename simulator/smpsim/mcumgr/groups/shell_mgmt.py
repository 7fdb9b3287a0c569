"""Group 9, shell management: exec runs a command line on the board's dummy shell backend.

``{"argv": [tstr, ...]}`` -> ``{"o": output, "ret": return value}``, read the way
``shell_mgmt_exec`` reads it rather than with the bulk map decoder:

* keys are walked in order until the first ``argv``; earlier values are only skipped (so a
  repeated ``argv`` is not an error), and a non-text key or the map's end first is rc 3;
* ``argv`` that is not an array is rc 3;
* the words are the leading text strings of the array, joined with spaces; the first element
  that is not a text string ends the list, so ``["kernel", 1]`` runs ``kernel`` (and prints its
  help), and ``[1, "kernel"]`` is an empty command;
* no words: group error EMPTY_COMMAND; a line reaching ``SHELL_CMD_BUFF_SIZE``: COMMAND_TOO_LONG.

Output that does not fit the response buffer becomes rc 7 in the server, as in Zephyr.
"""

from __future__ import annotations

from smpsim.mcumgr.codec import DecodeError, head, skip
from smpsim.mcumgr.dispatcher import Body, GroupHandlers, Request, ResetEffect
from smpsim.mcumgr.errors import GroupError, MgmtErr, MgmtError, ShellMgmtErr

SHELL = GroupHandlers("shell")


def _einval() -> MgmtError:
    return MgmtError(MgmtErr.EINVAL)


def _head(data: bytes, pos: int) -> tuple[int, int | None, int]:
    """(major type, argument or ``None`` for indefinite length, position after the head)."""
    try:
        return head(data, pos)
    except DecodeError:
        raise _einval() from None


def _text(data: bytes, pos: int) -> tuple[bytes, int] | None:
    """A definite-length text string at ``pos`` (``zcbor_tstr_decode``), else ``None``."""
    try:
        major, length, after = _head(data, pos)
    except MgmtError:
        return None
    if major != 3 or length is None or after + length > len(data):
        return None
    return data[after:after + length], after + length


def _skip(data: bytes, pos: int) -> int:
    """Position after the well-formed item at ``pos`` (``zcbor_any_skip``)."""
    try:
        return skip(data, pos)
    except DecodeError:
        raise _einval() from None


def _argv(req: Request) -> list[bytes] | None:
    """The leading text words of ``argv``; ``None`` when a word makes the line too long."""
    data, pos = req.data, req.start
    major, count, pos = _head(data, pos)
    if major != 5:
        raise _einval()
    index = 0
    while True:
        if count is not None and index >= count:
            raise _einval()  # the map ended without argv
        key = _text(data, pos)
        if key is None:
            raise _einval()
        pos = key[1]
        if key[0] == b"argv":
            break
        pos = _skip(data, pos)
        index += 1
    major, count, pos = _head(data, pos)
    if major != 4:
        raise _einval()
    limit = req.profile.firmware.shell.cmd_buff_size
    words: list[bytes] = []
    length = 0
    while count is None or len(words) < count:
        word = _text(data, pos)
        if word is None:
            break
        if length + len(word[0]) >= limit:
            return None
        words.append(word[0])
        length += len(word[0]) + 1
        pos = word[1]
    return words


@SHELL.write("exec")
def shell_exec(req: Request) -> Body:
    """Run ``argv`` on the dummy shell: ``{"o": output, "ret": return value}``."""
    words = _argv(req)
    if words is None:
        raise GroupError(ShellMgmtErr.COMMAND_TOO_LONG)
    if not words:
        raise GroupError(ShellMgmtErr.EMPTY_COMMAND)
    line = b" ".join(words).decode("utf-8", "surrogateescape")
    # The shell and its commands load with the first command line, not with every board.
    from smpsim.device.shell.dummy import dummy, run_dummy
    output, ret = run_dummy(req.device, line)
    shell = dummy(req.device)
    if shell.reboot is not None:
        # kernel reboot: sys_reboot does not return, the board goes down at once.
        shell.reboot = None
        req.effects.append(ResetEffect(0.0))
    return {"o": output, "ret": ret}
