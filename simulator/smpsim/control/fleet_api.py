"""The control API of a fleet's boards (``smpsim fleet --control``): the list of boards, every
route of one board's API under ``/api/boards/<id>/``, and actions for many boards at once.

Served by the process that runs the boards (one shard), with the same guards as a single
board's API (:mod:`smpsim.control.http`). A board gets its :class:`ControlPlane` the first time
a request addresses it: an idle fleet pays nothing for the API, and a board's console and event
history start at that moment.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from aiohttp import web

from smpsim.board import Board
from smpsim.control import pages
from smpsim.control.http import ControlServer, Refused, json_answer, read_body
from smpsim.control.plane import ACTIONS, ActionError, ControlPlane

BOARD_PREFIX = "/api/boards/{board}"


def unknown_board(board_id: str) -> Refused:
    """The 404 of a request about a board the fleet does not have."""
    return Refused(404, f"no board {board_id!r} in this fleet (GET /api/boards lists them)")


async def fleet_action(request: web.Request) -> tuple[str, dict[str, Any], list[str] | None]:
    """A fleet action's name, its fields for each board and the ``boards`` it names (``None``:
    every board), checked."""
    name = request.match_info["name"]
    if name not in ACTIONS:
        raise Refused(404, f"no action {name!r}; known: {', '.join(ACTIONS)}")
    body = await read_body(request, empty_ok=True)
    ids = body.pop("boards", None)
    if ids is not None and (not isinstance(ids, list)
                            or not all(isinstance(i, str) for i in ids)):
        raise Refused(400, "boards: must be a list of board ids")
    return name, body, ids


def dashboard_routes(first: str | None) -> list[web.RouteDef]:
    """The dashboard, one board at a time: ``/`` without ``?board=`` shows the first board."""
    routes = pages.routes()
    index = next(r for r in routes if r.path == "/")

    async def page(request: web.Request) -> web.StreamResponse:
        if "board" not in request.query and first is not None:
            return web.Response(status=302, headers={"Location": f"/?board={quote(first)}"})
        return await index.handler(request)

    return [web.get("/", page, allow_head=False), *(r for r in routes if r is not index)]


def live(board: Board) -> dict[str, Any]:
    """What a board's manifest entry does not say: its state now."""
    return {"state": board.runner.state, "boot_count": board.device.boot_count}


class FleetControlServer(ControlServer):
    """The HTTP API of the boards of one fleet process."""

    def __init__(self, boards: Sequence[Board], entries: Sequence[dict[str, Any]], host: str,
                 port: int, *, token: str | None = None,
                 sock: socket.socket | None = None) -> None:
        self.boards = {board.name: board for board in boards}
        self.entries = list(entries)
        """The boards' manifest entries, in plan order."""
        self.planes: dict[str, ControlPlane] = {}
        super().__init__(None, host, port, token, sock)

    def routes(self) -> list[web.RouteDef]:
        """The fleet's routes, each board's, and the dashboard (``/?board=ID``)."""
        return [web.get("/api/boards", self._list, allow_head=False),
                web.get(BOARD_PREFIX, self._board, allow_head=False),
                *self.board_routes(BOARD_PREFIX),
                web.post("/api/actions/{name}", self._fleet_action),
                *dashboard_routes(self.entries[0]["id"] if self.entries else None)]

    def plane_of(self, request: web.Request) -> ControlPlane:
        """The addressed board's control plane, attached at its first request."""
        return self._plane(request.match_info["board"])

    def _plane(self, board_id: str) -> ControlPlane:
        plane = self.planes.get(board_id)
        if plane is None:
            board = self.boards.get(board_id)
            if board is None:
                raise unknown_board(board_id)
            plane = self.planes[board_id] = ControlPlane(board)
        return plane

    async def close(self) -> None:
        """Stop serving, then stop watching the boards."""
        await super().close()
        for plane in self.planes.values():
            plane.close()

    async def _list(self, request: web.Request) -> web.Response:
        return json_answer([{**entry, **live(self.boards[entry["id"]])}
                            for entry in self.entries])

    async def _fleet_action(self, request: web.Request) -> web.Response:
        name, body, ids = await fleet_action(request)
        if ids is None:
            ids = [entry["id"] for entry in self.entries]
        planes = [self._plane(board_id) for board_id in ids]  # every id known before acting
        return json_answer(await act_on(planes, ids, name, body))


async def act_on(planes: Sequence[ControlPlane], ids: Sequence[str], name: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    """Action ``name`` on every board at once; each board's answer (or its refusal)."""
    results = await asyncio.gather(*(plane.act(name, dict(body)) for plane in planes),
                                   return_exceptions=True)
    answers: dict[str, Any] = {}
    for board_id, result in zip(ids, results, strict=True):
        if isinstance(result, ActionError):
            answers[board_id] = {"error": str(result)}
        elif isinstance(result, BaseException):
            raise result
        else:
            answers[board_id] = result
    refused = [a["error"] for a in answers.values() if "error" in a]
    if answers and len(refused) == len(answers):
        raise ActionError(refused[0])  # refused by every board: a bad request (400)
    return {"action": name, "boards": answers}
