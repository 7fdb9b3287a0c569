"""Whatever a user types or writes in a profile, ``smpsim run`` either refuses it (exit 2,
``smpsim: error:``) or serves a board that answers: never a Python stack.

Random values go into random keys of a built-in profile (the right type mostly, edge values,
sometimes the wrong type), and random options onto the command line; ``main()`` runs as the
console script does, its serve-forever step replaced by a boot and an os echo.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import math
import os
import tempfile
import types
import typing
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from smpsim import cli, serve
from smpsim.board import Board
from smpsim.config import Profile

from .smp_frames import frame

BASES = ["fast", "nrf52840dk", "native_sim_udp", "native_sim_serial_fs", "stm32f4", "esp32c3"]


def _scalar_keys(cls: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, type) of every scalar key under ``cls``."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in ("source", "name"):
            continue
        tp = hints[f.name]
        if typing.get_origin(tp) is types.UnionType:
            tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if dataclasses.is_dataclass(tp):
            keys += _scalar_keys(tp, f"{prefix}{f.name}.")
        elif tp in (int, float, str, bool):
            keys.append((f"{prefix}{f.name}", tp))
    return keys


KEYS = _scalar_keys(Profile)

INTS = st.one_of(st.sampled_from([-1, 0, 1, 2, 3, 4, 7, 8, 16, 64, 255, 256, 1024, 4096, 65535,
                                  65536, 2**31, 2**63 - 1, 0x40000000000]),
                 st.integers(-10, 70000))
FLOATS = st.one_of(st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 0.5, 1e9]),
                   st.floats(-10, 1e4, allow_nan=False))
TEXTS = st.one_of(st.sampled_from(["", "swap-sideways", "swap-move", "swap-scratch",
                                   "overwrite-only", "ecdsa-p256", "none", "uart", "raw", "shell",
                                   "/lfs1", "storage", "slot1", "x" * 300]),
                  st.text(max_size=12))
BY_TYPE = {int: INTS, float: FLOATS, str: TEXTS, bool: st.booleans()}


@st.composite
def _value(draw: st.DrawFn, tp: Any) -> Any:
    if draw(st.integers(0, 9)) == 0:  # the wrong type now and then
        return draw(st.one_of(*BY_TYPE.values()))
    return draw(BY_TYPE[tp])


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON strings are TOML basic strings
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    return str(value)


PARTITIONS = st.lists(st.fixed_dictionaries({
    "name": st.sampled_from(["mcuboot", "slot0", "slot1", "slot2", "slot3", "scratch",
                             "storage", "extra"]),
    "offset": st.integers(-1, 0x200000).map(lambda v: v & ~0x3ff if v > 0 else v),
    "size": st.integers(-1, 0x100000).map(lambda v: v & ~0x3ff if v > 0 else v),
}), max_size=6)


@st.composite
def profiles(draw: st.DrawFn) -> str:
    """The text of a profile file extending a built-in one."""
    lines = [f'extends = "{draw(st.sampled_from(BASES))}"']
    for key, tp in draw(st.lists(st.sampled_from(KEYS), max_size=2, unique_by=lambda k: k[0])):
        lines.append(f"{key} = {_toml(draw(_value(tp)))}")
    if draw(st.integers(0, 4)) == 0:
        lines.append(f"board.partitions = {_toml(draw(PARTITIONS))}")
    return "\n".join(lines) + "\n"


def _flash_option(tmp: Path, kind: str) -> list[str]:
    path = tmp / "flash.bin"
    if kind == "missing":
        pass
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "short":
        path.write_bytes(b"\xff" * 1000)
    elif kind == "devnull":
        path = Path(os.devnull)
    elif kind == "readonly":
        path.write_bytes(b"\xff" * 1000)
        path.chmod(0o444)
    elif kind == "under-a-file":
        (tmp / "file").write_bytes(b"")
        path = tmp / "file" / "flash.bin"
    else:
        return []
    return ["--flash", str(path)]


# Boards run at time scale 0: a profile may ask for a boot of days (timings need only be finite).
GOOD_OPTIONS = st.sampled_from([("--time-scale", "0"),
                                 ("--udp", "127.0.0.1:0"), ("--serial",),
                                 ("--log-level", "warning")])
BAD_OPTIONS = st.one_of(
    st.tuples(st.just("--time-scale"),
              st.sampled_from(["-1", "nan", "inf", "1e400", "abc", "1e9", ""])),
    st.tuples(st.just("--udp"), st.sampled_from(["bad", "127.0.0.1:99999", "host:", ":0",
                                                 "[::1]", "300.1.1.1:0"])),
    st.tuples(st.just("--no-udp")),
    st.tuples(st.just("--baud"), st.sampled_from(["9600", "0", "-5", "x"])),
    st.tuples(st.just("--adapter"), st.just("hci9")),
    st.tuples(st.just("--log-level"), st.just("loud")),
    st.tuples(st.just("--bogus")),
)
# Good options and at most one bad one, and mostly a usable flash file: many cases should reach
# a board, to try the profiles.
OPTIONS = st.tuples(st.lists(GOOD_OPTIONS, max_size=2),
                    st.one_of(st.none(), st.none(), BAD_OPTIONS)).map(
    lambda both: [part for opt in [*both[0], *([both[1]] if both[1] else [])] for part in opt])
FLASH = st.one_of(st.sampled_from(["none", "missing"]), st.sampled_from(["none", "missing"]),
                  st.sampled_from(["folder", "empty", "short", "devnull", "readonly",
                                   "under-a-file"]))


HALTED: list[str] = []
"""Boards that came up as a board with a bad image layout does: MCUboot refusing to boot."""


async def _echo_once(board: Board, control: object) -> list[str]:
    """What ``_serve`` is replaced with: start the board, see it answer an os echo, stop."""
    try:
        await board.start()
        while board.runner.state == "booting":
            await asyncio.sleep(0.01)
        if board.runner.state == "halted":  # MCUboot found nothing to boot, and said so
            HALTED.append(board.profile.name)
            return []
        await asyncio.wait_for(board.runner.online.wait(), 10)
        answered: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        board.runner.submit(frame(2, 0, 0, {"d": "hi"}),
                            lambda frame: answered.done() or answered.set_result(frame))
        frame_ = await asyncio.wait_for(answered, 10)
        assert cbor2.loads(frame_[8:]) == {"r": "hi"}
    finally:
        await board.stop()
    return []


def _main(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    err = io.StringIO()
    with monkeypatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setattr(serve, "_serve", _echo_once)
        patch.setattr(serve, "_ipv6_available", lambda: False)  # no [::1]:1337 on the host
        try:
            code = cli.main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, err.getvalue()


@settings(max_examples=int(os.environ.get("SMPSIM_PROPERTY_EXAMPLES", "300")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(profile=profiles(), options=OPTIONS, flash=FLASH)
def test_random_profiles_and_options_refuse_or_run(
        profile: str, options: list[str], flash: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        (tmp / "p.toml").write_text(profile, encoding="utf-8")
        argv = ["run", "--profile", str(tmp / "p.toml"), *_flash_option(tmp, flash), *options]
        if "--udp" not in options and "--no-udp" not in options:
            argv += ["--udp", "127.0.0.1:0"]
        if "--time-scale" not in options:
            argv += ["--time-scale", "0"]
        if "--serial" in options:
            argv[argv.index("--serial")] = f"--serial={tmp / 'tty'}"
        before = sorted(p.name for p in tmp.iterdir())
        code, err = _main(argv, monkeypatch)
        event(f"exit {code}" + (" (MCUboot halted)" if HALTED else ""))
        HALTED.clear()
        assert code in (0, 2), err
        if code == 2:
            assert "smpsim: error: " in err, err
            assert "Traceback" not in err
            assert sorted(p.name for p in tmp.iterdir()) == before  # nothing made
