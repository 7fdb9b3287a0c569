"""smpsim: a simulated Zephyr smp_svr board under MCUboot, for SMP (MCUmgr) clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smpsim.config import Profile, load_profile
    from smpsim.device.mcu import Device
    from smpsim.mcumgr.server import Reply, Server

__version__ = "0.1.0"

__all__ = ["Device", "Profile", "Reply", "Server", "__version__", "load_profile"]

# Loaded on first use: ``import smpsim.x`` (the pytest plugin, the CLI) must not pay for the
# whole device model and SMP server.
_LAZY = {
    "Device": "smpsim.device.mcu",
    "Profile": "smpsim.config",
    "load_profile": "smpsim.config",
    "Reply": "smpsim.mcumgr.server",
    "Server": "smpsim.mcumgr.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'smpsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
