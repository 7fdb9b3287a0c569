"""What ``smpsim ctl`` prints for people: the API's JSON as tables and one line per event."""

from __future__ import annotations

import argparse
import json
import textwrap
from collections.abc import Sequence
from typing import Any

EVENT_FRAME = ("seq", "kind", "uptime_s", "wall")
"""Fields every event has; the rest is the event's own."""


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Columns padded to their widest cell."""
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in row]
                                          for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells]


def _fields(data: dict[str, Any], skip: Sequence[str] = ()) -> str:
    return " ".join(f"{k}={json.dumps(v) if isinstance(v, dict | list) else v}"
                    for k, v in data.items() if k not in skip)


def human(args: argparse.Namespace, answer: Any) -> list[str]:
    """The lines to print for a verb's answer."""
    verb = args.verb
    if verb == "boards":
        return boards(answer)
    if verb == "status":
        return status(answer)
    if verb == "slots":
        return slots(answer)
    if verb == "flash":
        return flash(answer)
    if verb == "stats":
        return stats(answer)
    if verb == "console":
        return [f"[{line['uptime_s']:12.6f}] {line['line']}" for line in answer]
    if verb == "fault":
        return faults(args.fault_verb, answer)
    extra = _fields(answer, ("action", "state"))
    return [f"{answer['action']}: board {answer['state']}" + (f" ({extra})" if extra else "")]


def boards(entries: list[dict[str, Any]]) -> list[str]:
    """``ctl boards``."""
    def where(endpoint: dict[str, Any]) -> str:
        if endpoint["transport"] == "udp":
            host = endpoint["host"]
            return f"udp {f'[{host}]' if ':' in host else host}:{endpoint['port']}"
        return f"{endpoint['transport']} {endpoint.get('path', '')}"
    return table(("id", "profile", "state", "boots", "worker", "endpoints"),
                 [(e["id"], e["profile"], e["state"], e["boot_count"], e["worker"],
                   ", ".join(where(x) for x in e["endpoints"])) for e in entries])


def status(s: dict[str, Any]) -> list[str]:
    """``ctl status``."""
    uptime = "-" if s["uptime_s"] is None else f"{s['uptime_s']:.3f} s"
    rows = [
        ("profile", f"{s['profile']} ({s['description']})"),
        ("state", f"{s['state']} (boot {s['boot_count']}, boot mode {s['boot_mode']})"),
        ("uptime", f"{uptime} (board clock {s['clock_s']:.3f} s, "
                   f"{s['wall_s']:.1f} s since start)"),
        ("time scale", s["time_scale"]),
        ("firmware", f"{s['firmware']['version'] or '-'} (Zephyr {s['firmware']['zephyr']})"),
        *[("endpoint", f"{e['medium']} {e['where']}") for e in s["endpoints"]],
        ("control", s.get("control", "-")),
        ("flash file", s["flash_file"] or "in memory"),
        ("events", s["events"]),
    ]
    return [f"{name:11} {value}" for name, value in rows]


def slots(answer: list[dict[str, Any]]) -> list[str]:
    """``ctl slots``."""
    rows = []
    for slot in answer:
        trailer = slot["trailer"]
        valid = "-" if not slot["present"] else "yes" if slot["valid"] else \
            f"no: {slot['validity']}"
        rows.append((slot["image"], slot["slot"], slot["partition"],
                     slot.get("version") if slot["present"] else slot.get("problem", "empty"),
                     ",".join(f for f, on in slot["flags"].items() if on) or "-", valid,
                     (slot.get("hash") or "")[:16] or None, trailer["magic"],
                     trailer["swap_type"], trailer["copy_done"], trailer["image_ok"]))
    return table(("IMG", "SLOT", "PARTITION", "VERSION", "FLAGS", "VALID", "HASH", "MAGIC",
                  "SWAP", "COPY_DONE", "IMAGE_OK"), rows)


def flash(answer: dict[str, Any]) -> list[str]:
    """``ctl flash``: the partitions, then runs of alike sectors."""
    lines = table(("PARTITION", "OFFSET", "SIZE", "HOLDS"),
                  [(p["name"], f"{p['offset']:#08x}", f"{p['size']:#x}", p["holds"])
                   for p in answer["partitions"]])
    runs: list[list[Any]] = []
    for sector in answer["sectors"]:
        key = (sector["state"], sector["erase_count"], ", ".join(sector["holds"]))
        if runs and runs[-1][2] == key and runs[-1][1]["index"] + 1 == sector["index"]:
            runs[-1][1] = sector
        else:
            runs.append([sector, sector, key])
    rows = [(f"{a['index']}" + (f"-{b['index']}" if b is not a else ""),
             f"{a['offset']:#08x}-{b['offset'] + b['size'] - 1:#08x}", state, erases,
             holds or "-") for a, b, (state, erases, holds) in runs]
    return [*lines, "", *table(("SECTORS", "RANGE", "STATE", "ERASES", "HOLDS"), rows),
            f"({answer['size']:#x} bytes, write block {answer['write_block']}, "
            f"{answer['ops']} operations since start)"]


def stats(answer: dict[str, Any]) -> list[str]:
    """``ctl stats``: a group per paragraph (the flash simulator's has hundreds of fields)."""
    lines = []
    for name, values in [*answer["groups"].items(), ("flash", answer["flash"])]:
        lines += textwrap.wrap(_fields(values), 100, initial_indent=f"{name}: ",
                               subsequent_indent="    ")
    return [*lines, f"boot count: {answer['boot_count']}"]


def faults(verb: str, answer: Any) -> list[str]:
    """``ctl fault add|list|clear``."""
    if verb == "add":
        return [f"added {answer['id']}: {_fault_text(answer)}"]
    if verb == "clear":
        return [f"cleared {answer['cleared']} fault{'s' if answer['cleared'] != 1 else ''}"]
    return table(("ID", "FAMILY", "KIND", "HITS", "ACTIVE", "FIELDS"),
                 [(f["id"], f["family"], f["kind"], f["hits"], "yes" if f["active"] else "no",
                   _fields(f, ("id", "family", "kind", "hits", "active")))
                  for f in answer]) if answer else ["no faults"]


def _fault_text(fault: dict[str, Any]) -> str:
    return f"{fault['family']} {fault['kind']} " \
           f"({_fields(fault, ('id', 'family', 'kind', 'hits', 'active'))})"


def event_line(event: dict[str, Any]) -> str:
    """One event of ``ctl events``."""
    kind = event.get("kind", "?")
    if kind == "gap":
        return f"{'':>6} {'':>11} gap      {event['dropped']} events dropped: this client " \
               "fell behind"
    if kind == "error":
        return f"error: {event['error']}"
    if kind == "smp":
        text = f"{event['dir']:8} {event['medium']} {event.get('peer') or '-'}"
        if "op" in event:
            text += f" {event['op']} {event['group_name']}/{event['cmd']} seq {event['smp_seq']}"
        if "rc" in event:
            text += f" rc {event['rc']}"
        text += f" ({event['length']} B)"
    elif kind == "console":
        text = event["line"]
    else:
        text = _fields(event, EVENT_FRAME)
    return f"{event['seq']:>6} {event['uptime_s']:>11.6f} {kind:8} {text}"
