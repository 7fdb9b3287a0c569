"""smpsim: a simulated Zephyr smp_svr board under MCUboot, for SMP (MCUmgr) clients."""

from __future__ import annotations

from smpsim.config import Profile, load_profile
from smpsim.device.mcu import Device
from smpsim.mcumgr.server import Reply, Server

__version__ = "0.1.0"

__all__ = ["Device", "Profile", "Reply", "Server", "__version__", "load_profile"]
