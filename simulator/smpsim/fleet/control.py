"""``smpsim fleet --control``: where the fleet's control API is served, bound before any board
starts; in a shard, the API of its boards once they are up.

One process: the shard serves the API on the fleet's address. With ``--workers K`` each worker
serves its boards' API on a loopback port of its own, behind a token only the fleet knows, and
the fleet process serves the fleet's address as a proxy to them (:mod:`smpsim.fleet.proxy`):
a user sees one address whatever the number of workers. aiohttp is imported only with
``--control``.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smpsim.board import Board
from smpsim.errors import ConfigError
from smpsim.transports.udp import parse_hostport

if TYPE_CHECKING:
    from smpsim.control.fleet_api import FleetControlServer

DEFAULT_CONTROL = "127.0.0.1:8080"
"""Where ``--control`` without an address serves the API."""


@dataclass(frozen=True)
class ControlOptions:
    """Where a shard serves its boards' API."""

    host: str
    port: int
    token: str | None
    sock: socket.socket | None = None
    """Bound and listening before the boards start (``None``: bind ``host:port`` then)."""

    @property
    def url(self) -> str:
        """The API's base URL (with the bound port)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


def bind(address: str, token: str | None) -> ControlOptions:
    """Check ``--control HOST:PORT`` (loopback unless a token is given) and bind it now: a
    taken port is an error before any board starts."""
    from smpsim.control.http import check_bind

    host, port = parse_hostport(address)
    check_bind(host, port, token)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot serve the control plane on {address}: {exc.strerror}") from None
    sock.setblocking(False)
    return ControlOptions(host, sock.getsockname()[1], token, sock)


def for_worker() -> ControlOptions:
    """A worker's own API: a free loopback port, a token of the fleet's making."""
    return ControlOptions("127.0.0.1", 0, secrets.token_urlsafe(24))


async def serve(options: ControlOptions, boards: Sequence[Board],
                entries: list[dict[str, Any]]) -> FleetControlServer:
    """Serve the API of ``boards``; each manifest entry gets its board's ``control`` URL."""
    from smpsim.control.fleet_api import FleetControlServer

    server = FleetControlServer(boards, entries, options.host, options.port,
                                token=options.token, sock=options.sock)
    await server.start()
    for entry in entries:
        entry["control"] = f"{server.url}/api/boards/{entry['id']}"
    return server
