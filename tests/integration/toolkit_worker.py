"""Child process driving mcumgr-toolkit: ``toolkit_worker.py HOST PORT TIMEOUT_MS OPS_JSON``
(``serial PATH TIMEOUT_MS OPS_JSON`` for a serial port).

OPS_JSON is a list of ``[method, *args]``; the last line of stdout is a JSON list with one
result per op, or ``{"error": message}`` where the call raised. Values are made
JSON-friendly (objects become dicts of their public properties, datetimes ISO text).
"""

from __future__ import annotations

import datetime
import json
import sys
from pathlib import Path
from typing import Any

from mcumgr_toolkit import MCUmgrClient


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a toolkit result."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if hasattr(value, "__next__"):  # enum_iter_group_ids: an iterator
        return [plain(v) for v in value]
    kind = type(value)
    if any(isinstance(getattr(kind, n), kind) for n in dir(kind) if not n.startswith("_")):
        return str(value)  # an enum (FileChecksumDataFormat): its variants are of its type
    return {name: plain(getattr(value, name)) for name in dir(value)
            if not name.startswith("_") and not callable(getattr(value, name))}


def call(client: MCUmgrClient, method: str, args: list[Any]) -> Any:
    """Call one client method; ``os_set_datetime`` takes ISO text here, ``settings_write``
    hex."""
    if method == "os_set_datetime":
        args = [datetime.datetime.fromisoformat(args[0])]
    if method == "settings_write":  # the value travels as hex text
        args = [args[0], bytes.fromhex(args[1])]
    if method == "fs_file_upload":  # the content travels as hex text
        args = [args[0], bytes.fromhex(args[1])]
    if method == "image_upload":  # the image travels as a file path
        args = [Path(args[0]).read_bytes(), *args[1:]]
    return getattr(client, method)(*args)


def main() -> None:
    host, port, timeout_ms, ops = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    if host == "serial":  # serial PATH: the port is a serial device
        client = MCUmgrClient.serial(port, 115200, timeout_ms)
    else:
        client = MCUmgrClient.udp(host, int(port), timeout_ms)
    results = []
    for method, *args in json.loads(ops):
        try:
            results.append(plain(call(client, method, args)))
        except RuntimeError as exc:
            results.append({"error": str(exc)})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
