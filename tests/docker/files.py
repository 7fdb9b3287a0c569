"""Where the container files are, and the health probe loaded as a module."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
PROBE = DOCKER / "smp_probe.py"


def load_probe() -> ModuleType:
    """docker/smp_probe.py as a module (it is a script beside the Dockerfile, not in a package)."""
    spec = importlib.util.spec_from_file_location("smp_probe", PROBE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
