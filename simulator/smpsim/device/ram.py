"""The application's RAM: what its subsystems keep between requests, lost at every reset.

Each owner keeps one object of its own class here (the img group its upload, the fs group its
open transfer, the shell its instances), found by that class. The device model stays ignorant of
the owners, and every access is typed: ``ram.get(Upload)`` is an ``Upload | None``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


class Ram:
    """Per-boot state, one object per owner class; :meth:`clear` is the reset."""

    def __init__(self) -> None:
        self._cells: dict[type[Any], Any] = {}

    def get(self, kind: type[T]) -> T | None:
        """The ``kind`` object, if one is kept."""
        found: T | None = self._cells.get(kind)  # typed without cast(): a call per request
        return found

    def put(self, value: T) -> T:
        """Keep ``value`` (replacing the object of its class)."""
        self._cells[type(value)] = value
        return value

    def pop(self, kind: type[T]) -> T | None:
        """Forget the ``kind`` object; returns it if there was one."""
        return cast("T | None", self._cells.pop(kind, None))

    def setdefault(self, kind: type[T], make: Callable[[], T]) -> T:
        """The ``kind`` object, made by ``make`` the first time this boot."""
        found = self._cells.get(kind)
        if found is None:
            found = self._cells[kind] = make()
        return cast("T", found)

    def __contains__(self, kind: type[Any]) -> bool:
        return kind in self._cells

    def clear(self) -> None:
        """Power loss or reset: everything is gone."""
        self._cells.clear()
