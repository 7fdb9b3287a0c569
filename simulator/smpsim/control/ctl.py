"""``smpsim ctl``: a running board's control plane (``smpsim run --control``) from the shell.

Tables for people by default, the API's JSON with ``--json``. Exit status: 0 done, 2 bad usage or
refused by the API (its message is printed), 1 the API cannot be reached (or failed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from smpsim.control import show

DEFAULT_URL = "http://127.0.0.1:8080"
SIMPLE_ACTIONS = {"reset": "reset the board and wait until it has booted",
                  "power-on": "power the board on and wait until it has booted",
                  "power-off": "take the power away (the board stays off)",
                  "ble-disconnect": "drop every BLE central's connection"}


class Failed(Exception):
    """A command that did not go through; ``status`` is the exit status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``ctl`` and its verbs to the command line."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--control", metavar="URL", default=argparse.SUPPRESS,
                        help=f"the control API (default $SMPSIM_CONTROL or {DEFAULT_URL})")
    common.add_argument("--token", metavar="T", default=argparse.SUPPRESS,
                        help="bearer token (default $SMPSIM_CONTROL_TOKEN)")
    common.add_argument("--board", metavar="ID", default=argparse.SUPPRESS,
                        help="one board of a fleet (smpsim fleet --control; see ctl boards)")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the API's JSON")
    common.add_argument("--timeout", type=float, metavar="S", default=argparse.SUPPRESS,
                        help="seconds to wait for an answer (default 120)")
    ctl = sub.add_parser("ctl", parents=[common],
                         help="watch and drive a running board (smpsim run --control)")
    verbs = ctl.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, text: str) -> argparse.ArgumentParser:
        return verbs.add_parser(name, parents=[common], help=text, description=text)

    verb("boards", "a fleet's boards: id, profile, state, boot count, endpoints")
    verb("status", "the board: state, boot count, uptime, time scale, endpoints")
    verb("slots", "every image slot: image, flags, trailer, validity")
    verb("flash", "partitions, and every sector's state and contents")
    verb("stats", "the statistics groups and the flash's counters")
    console = verb("console", "console lines kept since the start")
    console.add_argument("--since", type=int, default=0, metavar="N",
                         help="lines after line N only")
    events = verb("events", "follow the event stream, a line per event, until Ctrl-C")
    first = events.add_mutually_exclusive_group()
    first.add_argument("--last", type=int, metavar="N", help="start with the last N events")
    first.add_argument("--since", type=int, metavar="SEQ", help="start after event SEQ")
    events.add_argument("--count", type=int, metavar="N", help="stop after N events")
    for name, text in SIMPLE_ACTIONS.items():
        verb(name, text)
    cycle = verb("power-cycle", "power off, wait, power on")
    cycle.add_argument("--off-s", type=float, metavar="S", help="seconds off (default 0.5)")
    cut = verb("power-cut", "cut the power now, before flash operation N, or at P %% of the "
                            "next swap")
    when = cut.add_mutually_exclusive_group()
    when.add_argument("--before-op", type=int, metavar="N",
                      help="before the Nth flash operation from now")
    when.add_argument("--at-swap-percent", type=float, metavar="P",
                      help="at P %% of the next swap's flash operations")
    cut.add_argument("--restore-after-s", type=float, metavar="S",
                     help="power comes back S seconds after the cut (default: stays off)")
    scale = verb("time-scale", "run the board at another time scale")
    scale.add_argument("scale", type=float, metavar="X", help="1.0 real time, 0 instant")
    mode = verb("boot-mode", "set the retained boot mode")
    mode.add_argument("mode", type=int, metavar="N", help="0 normal, 1 bootloader")
    button = verb("button", "hold or release MCUboot's recovery button (read at each reset)")
    button.add_argument("held", choices=("hold", "release"))
    fault = verb("fault", "add, list or clear faults")
    fault_verbs = fault.add_subparsers(dest="fault_verb", required=True, metavar="add|list|clear")
    add = fault_verbs.add_parser("add", parents=[common], help="add a fault")
    add.add_argument("family", choices=("link", "flash", "app"))
    add.add_argument("kind", help="drop_requests, write_error, crash... (see the README)")
    add.add_argument("fields", nargs="*", metavar="KEY=VALUE",
                     help="the fault's fields: count=2 probability=0.5 partition=slot1")
    fault_verbs.add_parser("list", parents=[common], help="every fault added, with its hits")
    clear = fault_verbs.add_parser("clear", parents=[common], help="clear one fault, or all")
    clear.add_argument("id", nargs="?", help="the fault's id (default: every fault)")


class Api:
    """Blocking calls to the control API."""

    def __init__(self, url: str, token: str | None, timeout: float,
                 board: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.board = board
        """A fleet's board: its API is under ``/api/boards/<id>/``."""

    def path(self, path: str) -> str:
        """A board's API path (``/api/slots``) where the board's API is."""
        if self.board is None or not path.startswith("/api/"):
            return path
        return f"/api/boards/{urllib.parse.quote(self.board, safe='')}/{path[5:]}"

    def headers(self) -> dict[str, str]:
        """Headers of every request."""
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON answer, or :class:`Failed`."""
        data = None if body is None else json.dumps(body).encode()
        headers = self.headers()
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + self.path(path), data=data, method=method,
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            raise Failed(2 if exc.code < 500 else 1, _refusal(exc.code, exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failed(1, f"cannot reach the control plane at {self.url}: {reason}") from None


def _refusal(status: int, body: bytes) -> str:
    try:
        message = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip() or "no message"
    return f"refused (HTTP {status}): {message}"


def _fault_spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"family": args.family, "kind": args.kind}
    for item in args.fields:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise Failed(2, f"{item!r}: fields are KEY=VALUE (count=2, partition=slot1)")
        spec[key] = _value(text)
    return spec


def _value(text: str) -> Any:
    """A field's value as typed: 0x1000 and 4096 are integers, 0.5 a number, true/false/null
    JSON's, anything else a string."""
    try:
        return int(text, 0)
    except ValueError:
        pass
    try:
        return json.loads(text)
    except ValueError:
        return text


def _action_body(args: argparse.Namespace) -> dict[str, Any]:
    if args.verb == "button":
        return {"held": args.held == "hold"}
    names = {"power-cycle": ("off_s",), "power-cut": ("before_op", "at_swap_percent",
                                                      "restore_after_s"),
             "time-scale": ("scale",), "boot-mode": ("mode",)}.get(args.verb, ())
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def _request(api: Api, args: argparse.Namespace) -> Any:
    """The API call a verb makes; its answer."""
    verb = args.verb
    if verb == "boards":
        return Api(api.url, api.token, api.timeout).call("GET", "/api/boards")
    if verb in ("status", "slots", "flash", "stats"):
        return api.call("GET", "/api/board" if verb == "status" else f"/api/{verb}")
    if verb == "console":
        return api.call("GET", f"/api/console?since={max(args.since, 0)}")
    if verb == "fault":
        if args.fault_verb == "add":
            return api.call("POST", "/api/faults", _fault_spec(args))
        if args.fault_verb == "list":
            return api.call("GET", "/api/faults")
        path = "/api/faults" + (f"/{urllib.parse.quote(args.id, safe='')}" if args.id else "")
        return api.call("DELETE", path)
    return api.call("POST", f"/api/actions/{verb}", _action_body(args))


def run(args: argparse.Namespace) -> int:
    """Carry out ``smpsim ctl VERB``."""
    url = getattr(args, "control", None) or os.environ.get("SMPSIM_CONTROL") or DEFAULT_URL
    token = getattr(args, "token", None) or os.environ.get("SMPSIM_CONTROL_TOKEN") or None
    as_json = getattr(args, "json", False)
    api = Api(url, token, getattr(args, "timeout", 120.0), getattr(args, "board", None))
    try:
        if args.verb == "events":
            return asyncio.run(_follow(api, args, as_json))
        answer = _request(api, args)
        for line in [json.dumps(answer, indent=2)] if as_json else show.human(args, answer):
            print(line)
        sys.stdout.flush()
    except Failed as exc:
        print(f"smpsim ctl: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:  # `smpsim ctl flash | head`: the reader has seen enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


async def _follow(api: Api, args: argparse.Namespace, as_json: bool) -> int:
    """``events``: print each event of the WebSocket stream as it comes."""
    import aiohttp

    params = {k: str(v) for k, v in (("last", args.last), ("since", args.since))
              if v is not None}
    url = api.url.replace("http", "ws", 1) + api.path("/api/events")
    seen = 0
    try:
        async with aiohttp.ClientSession() as session, session.ws_connect(
                url, params=params, headers=api.headers(), autoping=True) as ws:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                for line in message.data.splitlines():
                    event = json.loads(line)
                    print(line if as_json else show.event_line(event), flush=True)
                    if event.get("kind") not in ("gap", "error"):
                        seen += 1
                        if args.count is not None and seen >= args.count:
                            return 0
    except aiohttp.WSServerHandshakeError as exc:
        # The refusal's message is in the body, which the handshake error drops: ask again
        # without the upgrade to get it.
        api.call("GET", "/api/events?last=0")
        raise Failed(2 if exc.status < 500 else 1, f"refused (HTTP {exc.status})") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Failed(1, f"cannot reach the control plane at {api.url}: {exc}") from None
    if args.count is not None:
        raise Failed(1, f"the stream ended after {seen} of {args.count} events")
    return 0
