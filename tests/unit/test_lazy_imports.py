"""Import only what is used (issue 15): the pytest plugin, loaded in every pytest session where
smpsim is installed, and the root package pull in nothing heavy until something asks for it."""

from __future__ import annotations

import json
import subprocess
import sys

import smpsim
import smpsim.pytest_plugin as plugin
from smpsim.config import DEFAULT_PROFILE

HEAVY = ("cryptography", "littlefs", "construct", "aiohttp", "cbor2", "smpsim.device.mcu",
         "smpsim.mcumgr.server", "smpsim.config", "smpsim.testing.emulated", "importlib.metadata")


def _loaded_after(statement: str) -> set[str]:
    """The modules a fresh interpreter holds after ``statement`` (pytest itself excepted)."""
    code = (f"import sys, json, pytest; before = set(sys.modules); {statement}; "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return set(json.loads(out))


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_the_plugin_imports_nothing_heavy() -> None:
    loaded = _loaded_after("import smpsim.pytest_plugin")
    assert "smpsim.pytest_plugin" in loaded
    assert _heavy(loaded) == []


def test_the_root_package_imports_nothing_heavy() -> None:
    assert _heavy(_loaded_after("import smpsim")) == []


def test_the_lazy_names_still_resolve() -> None:
    assert _heavy(_loaded_after("from smpsim import Server, Device")) != []
    from smpsim.device.mcu import Device
    from smpsim.mcumgr.server import Reply, Server
    from smpsim.testing.emulated import DeviceState, EmulatedDevice

    assert (smpsim.Device, smpsim.Server, smpsim.Reply) == (Device, Server, Reply)
    assert (plugin.EmulatedDevice, plugin.DeviceState) == (EmulatedDevice, DeviceState)
    assert plugin.DEFAULT_PROFILE == DEFAULT_PROFILE


def test_unknown_names_are_attribute_errors() -> None:
    for module in (smpsim, plugin):
        assert not hasattr(module, "no_such_name")


def test_a_udp_board_started_as_smpsim_run_starts_it_loads_only_what_it_serves() -> None:
    """``smpsim run`` with the default profile over UDP: no other command's code, no serial
    recovery, link faults, shell or other swap strategies until something asks for them, no
    cryptography (the factory image's signature is one of the known good ones), no greenlet at
    time scale 0 (only a paced boot runs on a stack of its own), and neither
    importlib.metadata (littlefs-python's ``__init__`` asks it for its version) nor
    importlib.resources."""
    code = """
import asyncio, json, sys
from smpsim import cli
from smpsim.board import Board
from smpsim.config import load_profile
from smpsim.transports.endpoint import EndpointSpec

async def serve() -> None:
    args = cli._parser("run").parse_args(["run", "--udp", "127.0.0.1:0"])
    board = Board(load_profile(args.profile), [EndpointSpec("udp", args.udp[0])])
    await board.start()
    await board.stop()

asyncio.run(serve())
print(json.dumps(sorted(sys.modules)))
"""
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                           capture_output=True, text=True).stdout))
    assert "smpsim.device.mcuboot.swap_move" in loaded  # the profile's strategy is there
    assert "littlefs.lfs" in loaded and "littlefs" not in loaded  # the binding, not the package
    unused = ("smpsim.fleet", "smpsim.flashtool", "smpsim.control.ctl", "smpsim.control.plane",
              "smpsim.demo", "smpsim.mcumgr.boot_serial", "smpsim.transports.link_faults",
              "smpsim.device.shell", "smpsim.device.mcuboot.ram_load",
              "smpsim.device.mcuboot.swap_scratch", "smpsim.device.mcuboot.swap_offset",
              "intelhex", "aiohttp", "importlib.metadata", "importlib.resources",
              "cryptography", "smpsim.flashfile", "shutil", "greenlet")
    assert sorted(m for m in loaded if any(m == u or m.startswith(u + ".") for u in unused)) \
        == []


def test_the_littlefs_package_still_imports_whole_after_smpsim_took_its_binding() -> None:
    """smpsim loads littlefs-python's binding without the package's ``__init__``; a later
    ``import littlefs`` (a test, a user's script) gets the whole package, on the same binding,
    and a package imported first is the one smpsim uses."""
    code = """
import importlib.metadata, json, sys
from smpsim.device.fs import littlefs as ours
skipped = "littlefs" not in sys.modules
import littlefs
print(json.dumps([skipped, littlefs.__version__ == importlib.metadata.version("littlefs-python"),
                  littlefs.lfs is ours.lfs, littlefs.LittleFSError is ours.LittleFSError,
                  callable(littlefs.LittleFS)]))
"""
    first = "import littlefs\nfrom smpsim.device.fs import littlefs as ours\n" \
            "print(ours.lfs is littlefs.lfs and ours.LittleFSError is littlefs.LittleFSError)"
    assert json.loads(subprocess.run([sys.executable, "-c", code], check=True,
                                     capture_output=True, text=True).stdout) == [True] * 5
    assert subprocess.run([sys.executable, "-c", first], check=True, capture_output=True,
                          text=True).stdout.strip() == "True"


def test_smpsim_run_imports_asyncio_without_ssl_which_still_imports_after() -> None:
    """``smpsim run`` speaks no TLS: asyncio is imported as on a Python without ``ssl``, and
    ``ssl`` still imports once the board serves (aiohttp imports it for the control plane)."""
    code = """
import gc, json, os, signal, sys, threading, time
from smpsim import cli

seen = []

def look_when_up() -> None:
    deadline = time.monotonic() + 20
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    seen.append("ssl" in sys.modules)
    import ssl
    seen.append(sys.modules["asyncio.base_events"].ssl is None and ssl.SSLContext is not None)
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=look_when_up, daemon=True).start()
status = cli.main(["run", "--udp", "127.0.0.1:0", "--time-scale", "0", "--log-level", "warning"])
print(json.dumps([status, *seen]))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out.splitlines()[-1]) == [0, False, True]


def test_smpsim_run_collects_no_cycles_while_starting_and_freezes_what_it_built() -> None:
    """The cyclic collector is off from ``main`` until the board is up, then on again with the
    start-up's objects frozen out of it; the command still stops cleanly on SIGTERM."""
    code = """
import gc, json, os, signal, sys, threading, time
from smpsim import cli

starting = []
up = []

def stop_when_up() -> None:
    deadline = time.monotonic() + 20
    while gc.get_freeze_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.002)
    up.append(gc.get_freeze_count() > 0 and gc.isenabled())
    os.kill(os.getpid(), signal.SIGTERM)

threading.Thread(target=stop_when_up, daemon=True).start()
# Collections from here on: the ones before are this script's own.
gc.callbacks.append(lambda phase, info: phase == "start" and gc.get_freeze_count() == 0
                    and starting.append(info["generation"]))
status = cli.main(["run", "--udp", "127.0.0.1:0", "--time-scale", "0", "--log-level", "warning"])
print(json.dumps([status, starting, up, gc.isenabled()]))
"""
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    assert json.loads(out.splitlines()[-1]) == [0, [], [True], True]
