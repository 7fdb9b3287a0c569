"""The control plane of ``smpsim run``: what ``--control``, ``--control-token``, ``--faults`` and
``--trace`` ask for, checked before the board starts, attached before its first boot (so the
trace and the event stream have that boot), and served once the board is up.

Not a transport endpoint: an endpoint serves SMP through the runner, while the control plane
watches and drives the whole board (its device, its runner and every endpoint) and must start
after them. aiohttp is imported only when ``--control`` is given, the rest of the control plane
only when a part of it is asked for: ``smpsim run`` without it starts sooner.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from smpsim.records import Record, record
from smpsim.transports.udp import parse_hostport

if TYPE_CHECKING:
    from smpsim.board import Board
    from smpsim.config import Profile
    from smpsim.control.http import ControlServer
    from smpsim.control.plane import ControlPlane
    from smpsim.control.trace import TraceFile

DEFAULT_CONTROL = "127.0.0.1:8080"
"""Where ``--control`` without an address serves the API."""


@record
class ControlService(Record):
    """The control plane a ``smpsim run`` asked for (any part may be absent)."""

    address: str | None = None
    """``HOST:PORT`` of the HTTP API; ``None``: no API."""
    token: str | None = None
    faults_path: Path | None = None
    trace_path: Path | None = None
    dashboard: bool = False
    """Say where the dashboard is on the ready line (it is served with the API in any case)."""
    faults: list[dict[str, Any]] = field(init=False, default_factory=list)
    plane: ControlPlane | None = field(init=False, default=None)
    _trace: TraceFile | None = field(init=False, default=None)
    server: ControlServer | None = field(init=False, default=None)

    @property
    def wanted(self) -> bool:
        """Whether any part of the control plane was asked for."""
        return any(x is not None for x in (self.address, self.faults_path, self.trace_path))

    def check(self, profile: Profile) -> None:
        """Everything that can be wrong before the board starts (a :class:`ConfigError`):
        the address, a non-loopback bind without a token, the faults file; opens the trace."""
        if self.address is not None:
            from smpsim.control.http import check_bind
            check_bind(*parse_hostport(self.address), self.token)
        if self.faults_path is not None:
            from smpsim.control import faultfile
            self.faults = faultfile.load(self.faults_path, profile)
        if self.trace_path is not None:
            from smpsim.control.trace import TraceFile
            self._trace = TraceFile(self.trace_path)

    def attach(self, board: Board) -> None:
        """Watch ``board`` from before its first boot (its ``before_boot`` hook)."""
        from smpsim.control.plane import ControlPlane
        self.plane = ControlPlane(board)
        if self._trace is not None:
            self.plane.hub.subscribe(self._trace)

    async def start(self) -> list[str]:
        """The board is up: add the file's faults, serve the API; the ready lines."""
        plane = self.plane
        assert plane is not None, "attach() first"
        for spec in self.faults:
            plane.add_fault(spec)
        if self.address is None:
            return []
        from smpsim.control.http import ControlServer
        self.server = ControlServer(plane, *parse_hostport(self.address), self.token)
        await self.server.start()
        page = f"; dashboard at {self.dashboard_url}" if self.dashboard else ""
        return [f"smpsim: {plane.device.profile.name} serving the control plane on "
                f"{self.server.url}{page}"]

    @property
    def dashboard_url(self) -> str:
        """The dashboard's address (once serving). With a token, the token rides in the
        fragment, as ``#token=...``: a browser never sends a fragment to a server (so no proxy
        or access log sees it), and the page moves it to the tab's session storage and out of
        the address bar before it does anything else."""
        assert self.server is not None, "start() first"
        fragment = f"#token={quote(self.token, safe='')}" if self.token else ""
        return f"{self.server.url}/{fragment}"

    async def stop(self) -> None:
        """Stop serving, stop watching, close the trace."""
        if self.server is not None:
            await self.server.close()
        if self.plane is not None:
            self.plane.close()
        if self._trace is not None:
            self._trace.close()
