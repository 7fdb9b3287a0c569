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
