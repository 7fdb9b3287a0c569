"""The fleet's manifest: one JSON document naming every board, its profile, identity,
endpoints and flash file, for the backend (or CI job) that drives the fleet."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from smpsim.fleet.spec import PlannedBoard

FORMAT = 1
"""Manifest format version; a change that breaks readers bumps it."""


def board_entry(board: PlannedBoard, udp: tuple[str, int], serial: str | None,
                worker: int) -> dict[str, Any]:
    """One board's entry: ``endpoints`` lists UDP (``host``, ``port``) and serial (``path``)."""
    host, port = udp
    endpoints: list[dict[str, Any]] = [{"transport": "udp", "host": host, "port": port}]
    if serial is not None:
        endpoints.append({"transport": "serial", "path": serial})
    identity = board.identity
    return {"id": identity.board_id, "profile": board.profile_name,
            "serial_number": identity.serial_number, "hostname": identity.hostname,
            "ble_name": identity.ble_name, "endpoints": endpoints,
            "flash": str(board.flash.resolve()), "worker": worker}


def document(entries: list[dict[str, Any]], time_scale: float, workers: int) -> dict[str, Any]:
    """The whole manifest."""
    return {"format": FORMAT, "time_scale": time_scale, "workers": workers,
            "boards": entries}


def write(path: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` to ``path`` whole or not at all (a reader never sees half)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    partial.replace(path)
