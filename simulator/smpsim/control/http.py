"""The control plane over HTTP: a JSON API and the event stream on a WebSocket, served with
aiohttp in the board's event loop (``smpsim run --control``).

The API can erase flash and cut power, so it guards itself three ways, on every request
including the WebSocket handshake:

* bound to loopback unless told otherwise, and then only with a bearer token
  (``--control-token``), compared in constant time, on every request but the dashboard's own
  files (they hold no data of the board, and a browser cannot send a header when it opens a
  page). A browser cannot put a header on a WebSocket either: the handshake may carry the token
  as a subprotocol instead, ``bearer.`` and the token in base64url, offered next to ``smpsim``
  (the one the server accepts and answers, so the token is never echoed);
* on a loopback bind, the ``Host`` header must name a loopback address (``localhost``,
  ``127.0.0.1``, ``[::1]``): a page that points its own DNS name at 127.0.0.1 (DNS rebinding)
  is refused;
* a request that carries an ``Origin`` (a browser's) is refused unless it is this server's own
  origin: another site's page can neither read the board nor act on it.

A request the API cannot take (bad JSON, an unknown fault kind, a value out of range) gets a 400
whose JSON ``error`` names the field, and changes nothing on the board.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from smpsim.control import pages
from smpsim.control.events import EventHub
from smpsim.control.plane import ACTIONS, ActionError, ControlPlane, FaultError
from smpsim.control.stream import EventFeed, history, messages
from smpsim.errors import ConfigError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_BODY = 64 * 1024
"""Largest request body: a fault or an action is a few hundred bytes."""
_FIELD = re.compile(r"^(\w+)(?: and \w+)?: |unknown field '(\w+)'")
SUBPROTOCOL = "smpsim"
"""The WebSocket subprotocol of the event stream (answered when a client offers it)."""
TOKEN_PROTOCOL = "bearer."
"""Prefix of the subprotocol that carries the token in a browser's handshake."""


def offered_protocols(request: web.Request) -> list[str]:
    """The WebSocket subprotocols a handshake offers."""
    header = request.headers.get("Sec-WebSocket-Protocol", "")
    return [p.strip() for p in header.split(",") if p.strip()]


def protocol_token(request: web.Request) -> bytes | None:
    """The token a WebSocket handshake carries as a subprotocol, if it carries one."""
    for protocol in offered_protocols(request):
        if protocol.startswith(TOKEN_PROTOCOL):
            encoded = protocol[len(TOKEN_PROTOCOL):]
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            except (ValueError, binascii.Error):
                return b""  # not base64url: no token, so a wrong one
    return None


def stream_response(request: web.Request) -> web.WebSocketResponse:
    """The WebSocket response of an event stream, answering ``smpsim`` if the client offers
    subprotocols (a browser with a token does); :class:`Refused` if it offers others only."""
    offered = offered_protocols(request)
    if offered and SUBPROTOCOL not in offered:
        # Refused here, not by aiohttp, which would log what was offered (a token too).
        raise Refused(400, f"Sec-WebSocket-Protocol: offer {SUBPROTOCOL!r}")
    return web.WebSocketResponse(compress=False, heartbeat=20.0, max_msg_size=MAX_BODY,
                                 protocols=(SUBPROTOCOL,) if offered else ())


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address literal."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, port: int, token: str | None) -> None:
    """Refuse (:class:`ConfigError`) to serve the API off loopback without a token, or with a
    token an HTTP header cannot carry as it is (anything but printable ASCII)."""
    if token and not all("!" <= c <= "~" for c in token):
        raise ConfigError("--control-token: only printable ASCII without spaces (it travels "
                          "in an HTTP header)")
    if not is_loopback(host) and not token:
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        raise ConfigError(f"--control {where} is not a loopback address: the API can erase "
                          "flash and cut power, so serving it there needs --control-token")


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A refusal as JSON; ``field`` is the request field the message is about, if one is."""
    body: dict[str, Any] = {"error": message}
    match = _FIELD.match(message)
    if match:
        body["field"] = match.group(1) or match.group(2)
    return web.json_response(body, status=status, headers=headers, dumps=_dumps)


class Refused(Exception):
    """A request refused with an HTTP status and a message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _query_int(request: web.Request, name: str, high: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise Refused(400, f"{name}: {text!r} is not an integer") from None
    if not 0 <= value <= high:
        raise Refused(400, f"{name}: {value} is not from 0 to {high}")
    return value


async def _body(request: web.Request, empty_ok: bool) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip() and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Refused(400, f"body: not JSON ({exc})") from None
    if not isinstance(body, dict):
        raise Refused(400, "body: must be a JSON object")
    return body


class ControlServer:
    """The HTTP API of one :class:`ControlPlane` on ``host:port``."""

    def __init__(self, plane: ControlPlane | None, host: str, port: int,
                 token: str | None = None, sock: socket.socket | None = None) -> None:
        check_bind(host, port, token)
        self.plane = plane
        """The board; ``None`` for a server that picks it per request (:meth:`plane_of`)."""
        self.sock = sock
        """A listening socket bound beforehand (``host:port`` is then where it is bound)."""
        self.host = host
        self.port = port
        self._token = token.encode() if token else None
        self._loopback = is_loopback(host)
        self._sockets: set[web.WebSocketResponse] = set()
        app = web.Application(middlewares=[self._errors, self._guard], client_max_size=MAX_BODY)
        app.add_routes(self.routes())
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)

    def routes(self) -> list[web.RouteDef]:
        """The application's routes: one board's API under ``/api``, and the dashboard."""
        return [*self.board_routes("/api"), *pages.routes()]

    def board_routes(self, prefix: str) -> list[web.RouteDef]:
        """One board's API under ``prefix`` (which may hold a ``{board}`` part: see
        :meth:`plane_of`)."""
        get, post, delete = web.get, web.post, web.delete
        return [
            get(f"{prefix}/board", self._board, allow_head=False),
            get(f"{prefix}/slots", self._slots, allow_head=False),
            get(f"{prefix}/flash", self._flash, allow_head=False),
            get(f"{prefix}/console", self._console, allow_head=False),
            get(f"{prefix}/stats", self._stats, allow_head=False),
            get(f"{prefix}/events", self._events, allow_head=False),
            post(f"{prefix}/actions/{{name}}", self._action),
            get(f"{prefix}/faults", self._faults, allow_head=False),
            post(f"{prefix}/faults", self._add_fault),
            delete(f"{prefix}/faults", self._clear_faults),
            delete(f"{prefix}/faults/{{id}}", self._clear_fault),
        ]

    def plane_of(self, request: web.Request) -> ControlPlane:
        """The board a request is about (this server's one board; a fleet's server picks it
        by the request's path)."""
        assert self.plane is not None, "a server without a plane overrides plane_of"
        return self.plane

    async def start(self) -> None:
        """Bind and serve; a bind failure is a :class:`ConfigError`."""
        await self._runner.setup()
        site: web.BaseSite = web.TCPSite(self._runner, self.host, self.port,
                                         shutdown_timeout=1.0) if self.sock is None else \
            web.SockSite(self._runner, self.sock, shutdown_timeout=1.0)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(f"cannot serve the control plane on {self.host}:{self.port}: "
                              f"{exc.strerror}") from None
        self.port = self._runner.addresses[0][1]

    @property
    def url(self) -> str:
        """The API's base URL, with the bound port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def close(self) -> None:
        """Close the event streams, then the server."""
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"board stopping")
        await self._runner.cleanup()

    # -- middlewares ----------------------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refused as exc:
            return _error(exc.status, str(exc))
        except (ActionError, FaultError) as exc:
            return _error(400, str(exc))
        except web.HTTPException as exc:  # aiohttp's own: no route (404), wrong method (405)
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            return _error(exc.status, exc.reason, headers)
        except Exception:
            log.exception("control API: %s %s", request.method, request.path)
            return _error(500, "internal error (see the simulator's log)")

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.url.host or ""
        if self._loopback and not is_loopback(host):
            raise Refused(403, f"Host {request.host!r} is not a loopback name of this server")
        origin = request.headers.get("Origin")
        if origin is not None and origin != f"http://{request.host}":
            raise Refused(403, f"Origin {origin!r}: cross-origin requests are refused")
        if self._token is not None and not self._authorized(request) and \
                not (request.method == "GET" and request.path in pages.FILES):
            return _error(401, "Authorization: a bearer token is required",
                          {"WWW-Authenticate": 'Bearer realm="smpsim"'})
        return await handler(request)

    def _authorized(self, request: web.Request) -> bool:
        assert self._token is not None
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            return hmac.compare_digest(given.encode(), self._token)
        # Only a WebSocket handshake of an event stream (a board's, or a fleet's board's).
        stream = request.path.endswith("/events") and \
            request.headers.get("Upgrade", "").lower() == "websocket"
        token = protocol_token(request) if stream else None
        return token is not None and hmac.compare_digest(token, self._token)

    # -- what the board shows -------------------------------------------------------------------

    async def _board(self, request: web.Request) -> web.Response:
        return _json({**self.plane_of(request).status(), "control": self.url})

    async def _slots(self, request: web.Request) -> web.Response:
        return _json(self.plane_of(request).slots())

    async def _flash(self, request: web.Request) -> web.Response:
        return _json(self.plane_of(request).flash())

    async def _console(self, request: web.Request) -> web.Response:
        since = _query_int(request, "since", 2**63) or 0
        return _json(self.plane_of(request).console_since(since))

    async def _stats(self, request: web.Request) -> web.Response:
        return _json(self.plane_of(request).stats())

    # -- the event stream ----------------------------------------------------------------------

    def _asked(self, since: Any, last: Any) -> tuple[int | None, int | None]:
        for name, value in (("since", since), ("last", last)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 0):
                raise Refused(400, f"{name}: {value!r} is not an integer of 0 or more")
        if since is not None and last is not None:
            raise Refused(400, "since and last: give one of them")
        return since, last

    async def _events(self, request: web.Request) -> web.StreamResponse:
        since, last = self._asked(_query_int(request, "since", 2**63),
                                  _query_int(request, "last", 2**31))
        keep_smp = _query_int(request, "smp", 2**31)  # only the latest SMP events per send
        hub = self.plane_of(request).hub
        if request.headers.get("Upgrade", "").lower() != "websocket":
            # Without a WebSocket: the kept events, for a poller or curl.
            events = hub.last(last) if last is not None else hub.since(since or 0)
            return _json([event.to_json() for event in events])
        ws = stream_response(request)
        await ws.prepare(request)
        feed = EventFeed(hub, keep_smp)  # before the history is read: nothing falls between
        self._sockets.add(ws)
        replays: list[tuple[int | None, int | None]] = []
        sender = asyncio.get_running_loop().create_task(
            self._send(ws, feed, history(hub, since, last), replays, hub=hub))
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                try:
                    asked = json.loads(message.data)
                    if not isinstance(asked, dict) or set(asked) - {"since", "last"}:
                        raise Refused(400, 'a client sends {"last": N} or {"since": SEQ}')
                    replays.append(self._asked(asked.get("since"), asked.get("last")))
                except (ValueError, Refused) as exc:
                    await ws.send_str(_dumps({"kind": "error", "error": str(exc)}))
                    continue
                feed.wake()
        finally:
            self._sockets.discard(ws)
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
        return ws

    async def _send(self, ws: web.WebSocketResponse, feed: EventFeed,
                    first: tuple[int, list[Any]], replays: list[tuple[int | None, int | None]],
                    *, hub: EventHub) -> None:
        """The client's sender: its history, then each send cycle's events, in order."""
        try:
            dropped, events = first
            async for text in messages(dropped, events, 0):
                await ws.send_str(text)
            after = events[-1][0] if events else 0
            while not ws.closed:
                dropped, skipped, batch = await feed.take()
                async for text in messages(dropped, batch, after, skipped):
                    await ws.send_str(text)
                if batch:
                    after = max(after, batch[-1][0])
                while replays:  # asked for history: after what was due, as asked
                    dropped, events = history(hub, *replays.pop(0))
                    async for text in messages(dropped, events, 0):
                        await ws.send_str(text)
                    if events:
                        after = max(after, events[-1][0])
        except ConnectionError:
            pass  # the client went away

    # -- actions and faults --------------------------------------------------------------------

    async def _action(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ACTIONS:
            raise Refused(404, f"no action {name!r}; known: {', '.join(ACTIONS)}")
        return _json(await self.plane_of(request).act(name, await _body(request, empty_ok=True)))

    async def _faults(self, request: web.Request) -> web.Response:
        return _json(self.plane_of(request).list_faults())

    async def _add_fault(self, request: web.Request) -> web.Response:
        spec = await _body(request, empty_ok=False)
        return _json(self.plane_of(request).add_fault(spec), status=201)

    async def _clear_faults(self, request: web.Request) -> web.Response:
        return _json({"cleared": self.plane_of(request).clear_faults()})

    async def _clear_fault(self, request: web.Request) -> web.Response:
        fault_id = request.match_info["id"]
        if not self.plane_of(request).clear_fault(fault_id):
            raise Refused(404, f"no fault {fault_id!r}")
        return _json({"cleared": 1, "id": fault_id})


json_answer = _json
"""An answer as compact JSON (for the fleet's API)."""
read_body = _body
"""A request's JSON object body, or a 400 (for the fleet's API)."""
