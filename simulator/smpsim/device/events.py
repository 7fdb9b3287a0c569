"""What the board tells whoever watches it (the control plane), as plain calls.

The device model emits an event at the moments a board's story is told by: MCUboot starting,
deciding, validating, erasing, swapping and jumping; the application starting, crashing or
hanging; every flash operation. Emitting costs one call per listener and nothing when nobody
listens; the device never learns who listens, nor what they do with it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Listener = Callable[[str, dict[str, Any]], None]
"""Called with an event kind and its fields."""


class Events:
    """The device's event outlet."""

    def __init__(self) -> None:
        self.listeners: list[Listener] = []

    def emit(self, kind: str, **fields: Any) -> None:
        """Tell every listener."""
        for listener in self.listeners:
            listener(kind, fields)
