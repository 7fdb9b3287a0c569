"""The recorded real-Zephyr answers the tests replay (see README.md here)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DIR = Path(__file__).resolve().parent
"""This folder: the ``*.jsonl`` transcripts and ``index.json``."""


def path(name: str) -> Path:
    """The file ``name`` (``native_sim_udp.jsonl``, ``index.json``); fails loudly if missing."""
    found = DIR / name
    if not found.is_file():
        raise FileNotFoundError(f"no golden record file {found}")
    return found


def records(name: str) -> list[dict[str, Any]]:
    """Every record of one transcript, in file order."""
    lines = path(name).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def index() -> dict[str, dict[str, Any]]:
    """``index.json``: build key -> its configuration and ``transcripts`` (file names)."""
    builds: dict[str, dict[str, Any]] = json.loads(path("index.json").read_text(encoding="utf-8"))
    return builds
