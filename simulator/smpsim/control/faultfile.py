"""``--faults FILE.toml``: faults to add when the board starts, checked before anything starts.

The file is an array of tables, one ``[[fault]]`` per fault, with the keys of the JSON that
``POST /api/faults`` takes::

    [[fault]]
    family = "link"
    kind = "drop_responses"
    count = 2

    [[fault]]
    family = "flash"
    kind = "write_error"
    partition = "slot1"
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from smpsim.config import Profile
from smpsim.control.faults import FaultError, parse
from smpsim.errors import ConfigError


def load(path: Path, profile: Profile) -> list[dict[str, Any]]:
    """The faults of ``path``, each checked against ``profile``'s flash; a :class:`ConfigError`
    names the file, the fault (1 is the first ``[[fault]]``) and the field."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"--faults {path}: {exc.strerror}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    extra = sorted(set(data) - {"fault"})
    if extra:
        raise ConfigError(f"{path}: unknown key {extra[0]!r}; faults are [[fault]] tables")
    specs = data.get("fault", [])
    if not isinstance(specs, list):
        raise ConfigError(f"{path}: 'fault' must be an array of tables ([[fault]])")
    areas = {p.name: (p.offset, p.size) for p in profile.board.partitions}
    for index, spec in enumerate(specs, 1):
        try:
            parse(spec, areas, profile.board.flash.size)
        except FaultError as exc:
            raise ConfigError(f"{path}: fault {index}: {exc}") from None
    return [dict(spec) for spec in specs]
