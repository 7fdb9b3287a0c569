"""Zephyr's settings subsystem: the application's handlers, their RAM values, the storage backend.

What the settings group reaches, with the errno each failure carries (the group maps them):

* :meth:`Settings.get` and :meth:`Settings.set` are ``settings_runtime_get/set``: they go to the
  handler owning the name's subtree and touch only its RAM value (no handler: -EINVAL; no such
  key: -ENOENT; no ``h_get``/``h_set``: -ENOTSUP; a value longer than the key allows: -EINVAL);
* :meth:`Settings.delete` is ``settings_delete``: it removes the name from storage only;
* :meth:`Settings.save` is ``settings_save``: every exporting handler's values go to storage,
  skipping those stored already; :meth:`Settings.load` reads storage back into the handlers.

Without a storage backend (``firmware.settings.partition`` empty, as on smp_svr) delete and
save fail with -ENOENT. RAM values start from the profile's defaults at every boot; the
application then loads what storage holds when the profile says it does.
"""

from __future__ import annotations

import contextlib

from smpsim.config import SettingsConfig, SettingsHandler, SettingsKey
from smpsim.device.console import Console
from smpsim.device.errno import EINVAL, ENOENT, ENOSPC, ENOTSUP
from smpsim.device.partitions import FlashArea
from smpsim.device.settings.log import NoSpace, SettingsLog
from smpsim.errors import SmpsimError

SEPARATOR, NAME_END = "/", "="
"""``SETTINGS_NAME_SEPARATOR`` and ``SETTINGS_NAME_END``."""


class SettingsError(SmpsimError):
    """A settings function failed with ``-errno``."""

    def __init__(self, errno: int, message: str = "") -> None:
        super().__init__(message or f"settings error -{errno}")
        self.errno = errno


def name_steq(name: str, key: str) -> tuple[bool, str | None]:
    """``settings_name_steq``: whether ``name`` is ``key`` or lies below it, and what follows
    the separator (``None`` when nothing does). ``=`` ends a name as its end does."""
    i = 0
    while i < len(key) and i < len(name) and name[i] == key[i] and name[i] != NAME_END:
        i += 1
    if i < len(key):
        return False, None
    if i < len(name) and name[i] == SEPARATOR:
        return True, name[i + 1:]
    if i == len(name) or name[i] == NAME_END:
        return True, None
    return False, None


def _encode(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


class Settings:
    """The settings subsystem of one device."""

    def __init__(self, config: SettingsConfig, area: FlashArea | None, console: Console) -> None:
        self.config = config
        self._console = console
        self.store: SettingsLog | None = SettingsLog(area) if area is not None else None
        """The storage backend, when the profile gives it a partition."""
        self.values: dict[tuple[str, str], bytes] = {}
        """(handler, key) -> RAM value."""
        self.commits = 0
        """``settings_commit`` calls since boot (``h_commit`` has nothing else to show)."""

    def boot(self) -> None:
        """RAM values back to their defaults, storage mounted, and loaded when the application
        loads it at start-up."""
        self.values = {(h.name, k.name): k.default.encode() for h in self.config.handlers
                       for k in h.keys}
        self.commits = 0
        if self.store is not None:
            with contextlib.suppress(NoSpace):  # a full log stays readable as it is
                self.store.mount()
            if self.config.load_at_boot:
                self.load()

    # ------------------------------------------------------------------ handlers

    def lookup(self, name: str) -> tuple[SettingsHandler, str | None] | None:
        """``settings_parse_and_lookup``: the handler of the most specific subtree holding
        ``name``, and the rest of the name below it."""
        best: tuple[SettingsHandler, str | None] | None = None
        for handler in self.config.handlers:
            match, rest = name_steq(name, handler.name)
            if not match:
                continue
            if best is None or name_steq(handler.name, best[0].name)[0]:
                best = (handler, rest)
        return best

    def _key(self, name: str) -> tuple[SettingsHandler, SettingsKey]:
        found = self.lookup(name)
        if found is None:
            raise SettingsError(EINVAL, f"no settings handler for {name!r}")
        handler, rest = found
        if rest is not None:
            for key in handler.keys:
                match, below = name_steq(rest, key.name)
                if match and below is None:
                    return handler, key
        raise SettingsError(ENOENT, f"{handler.name} has no key {rest!r}")

    def get(self, name: str, max_size: int) -> bytes:
        """``settings_runtime_get``: at most ``max_size`` bytes of the value."""
        found = self.lookup(name)
        if found is not None and not found[0].read:
            raise SettingsError(ENOTSUP)
        handler, key = self._key(name)
        return self.values[handler.name, key.name][:max_size]

    def set(self, name: str, value: bytes) -> None:
        """``settings_runtime_set``: the handler's RAM value, not storage."""
        found = self.lookup(name)
        if found is not None and not found[0].write:
            raise SettingsError(ENOTSUP)
        handler, key = self._key(name)
        if len(value) > key.max_size:
            raise SettingsError(EINVAL, f"{name}: {len(value)} bytes, at most {key.max_size}")
        self.values[handler.name, key.name] = bytes(value)

    # ------------------------------------------------------------------ storage

    def delete(self, name: str) -> None:
        """``settings_delete``: remove ``name`` from storage (its RAM value stays)."""
        found = self.lookup(name)
        if found is not None and not found[0].delete:
            raise SettingsError(ENOTSUP)
        if self.store is None:
            raise SettingsError(ENOENT, "no settings storage backend")
        try:
            self.store.save(_encode(name), None)
        except NoSpace as exc:
            raise SettingsError(ENOSPC, str(exc)) from None

    def commit(self) -> None:
        """``settings_commit``: every handler's ``h_commit``."""
        self.commits += 1

    def load(self) -> None:
        """``settings_load``: what storage holds goes to the handlers, then a commit."""
        if self.store is not None:
            for raw, value in self.store.items():
                name = raw.decode("utf-8", "surrogateescape")
                found = self.lookup(name)
                if found is None or not found[0].write:
                    continue  # nobody to hand it to: skipped quietly
                try:
                    self.set(name, value)
                except SettingsError as exc:
                    self._console.log("err", "settings", f"set-value failure. key: "
                                             f"{name} error(-{exc.errno})")
        self.commit()

    def save(self, subtree: str | None = None) -> None:
        """``settings_save`` (``settings_save_subtree`` with a ``subtree``: only handlers at or
        below it): every exporting handler's values to storage; the first error is raised once
        all were tried."""
        if self.store is None:
            raise SettingsError(ENOENT, "no settings storage backend")
        first: SettingsError | None = None
        for handler in self.config.handlers:
            below = subtree is None or name_steq(handler.name, subtree)[0]
            if not handler.export or not below:
                continue
            for key in handler.keys:
                try:
                    self.store.save(_encode(f"{handler.name}/{key.name}"),
                                    self.values[handler.name, key.name])
                except NoSpace as exc:
                    first = first or SettingsError(ENOSPC, str(exc))
        if first is not None:
            raise first
