"""The fleet's control API when its boards live in worker processes: the fleet process serves
the fleet's address (same guards as every control API) and passes each request on to the worker
that has the board, WebSocket event streams included; ``GET /api/boards`` and fleet-wide actions
ask every worker concerned and put the answers together.

It runs in a thread of the fleet process with an event loop of its own, started once every
worker is ready (after the fork: the workers inherit no thread).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web

from smpsim.control.fleet_api import BOARD_PREFIX, dashboard_routes, fleet_action, unknown_board
from smpsim.control.http import (
    ControlServer,
    Refused,
    json_answer,
    stream_response,
)
from smpsim.errors import ConfigError
from smpsim.fleet.control import ControlOptions

START_TIMEOUT_S = 10.0
HOP_HEADERS = {"content-type"}
"""Request headers passed on to a worker (with the worker's own token)."""


class Worker:
    """A worker's API: its base URL and token."""

    def __init__(self, url: str, token: str | None) -> None:
        self.url = url
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}


class FleetProxy(ControlServer):
    """The fleet's API in front of the workers' APIs."""

    def __init__(self, options: ControlOptions, entries: Sequence[dict[str, Any]],
                 workers: dict[int, Worker]) -> None:
        self.entries = list(entries)
        self.workers = workers
        self.where = {entry["id"]: workers[entry["worker"]] for entry in entries}
        self._session: aiohttp.ClientSession | None = None
        super().__init__(None, options.host, options.port, options.token, options.sock)

    def routes(self) -> list[web.RouteDef]:
        """The same routes as a one-process fleet's API."""
        return [web.get("/api/boards", self._list, allow_head=False),
                web.get(BOARD_PREFIX, self._forward, allow_head=False),
                web.route("*", BOARD_PREFIX + "/{tail:.*}", self._forward),
                web.post("/api/actions/{name}", self._fleet_action),
                *dashboard_routes(self.entries[0]["id"] if self.entries else None)]

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client session to the workers (made in the proxy's loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        return self._session

    async def close(self) -> None:
        """Stop serving, then close the session to the workers."""
        await super().close()
        if self._session is not None:
            await self._session.close()

    def _public(self, answer: Any) -> Any:
        """A worker's answer with the fleet's address where it named its own."""
        if isinstance(answer, dict) and isinstance(answer.get("control"), str):
            path = answer["control"].partition("/api/")[2]
            answer["control"] = f"{self.url}/api/{path}" if path else self.url
        return answer

    async def _ask(self, worker: Worker, method: str, path: str,
                   body: dict[str, Any] | None = None) -> tuple[int, Any]:
        try:
            async with self.session.request(method, worker.url + path, json=body,
                                            headers=worker.headers) as answer:
                return answer.status, await answer.json()
        except (aiohttp.ClientError, ValueError) as exc:
            raise Refused(502, f"a fleet worker did not answer: {exc}") from None

    async def _list(self, request: web.Request) -> web.Response:
        workers = list(self.workers.values())
        answers = await asyncio.gather(*(self._ask(w, "GET", "/api/boards") for w in workers))
        return json_answer([self._public(entry) for _, part in answers for entry in part])

    async def _fleet_action(self, request: web.Request) -> web.Response:
        name, body, ids = await fleet_action(request)
        shares: dict[int, list[str]] = {}
        for board_id in ids if ids is not None else self.where:
            worker = self.where.get(board_id)
            if worker is None:
                raise unknown_board(board_id)
            shares.setdefault(id(worker), []).append(board_id)
        by_key = {id(w): w for w in self.workers.values()}
        answers = await asyncio.gather(*(
            self._ask(by_key[key], "POST", f"/api/actions/{name}", {**body, "boards": share})
            for key, share in shares.items()))
        boards: dict[str, Any] = {}
        for share, (status, answer) in zip(shares.values(), answers, strict=True):
            if status == 200:
                boards.update(answer["boards"])
            else:  # refused by all of that worker's boards
                boards.update({i: {"error": answer.get("error")} for i in share})
        refused = [a["error"] for a in boards.values() if "error" in a]
        if boards and len(refused) == len(boards):
            raise Refused(400, refused[0])
        return json_answer({"action": name, "boards": boards})

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        board_id = request.match_info["board"]
        worker = self.where.get(board_id)
        if worker is None:
            raise unknown_board(board_id)
        url = worker.url + request.rel_url.path_qs
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._stream(request, worker, url)
        headers = {**{k: v for k, v in request.headers.items() if k.lower() in HOP_HEADERS},
                   **worker.headers}
        try:
            async with self.session.request(request.method, url, data=await request.read(),
                                            headers=headers) as answer:
                data = await answer.read()
                status, kind = answer.status, answer.content_type
        except aiohttp.ClientError as exc:
            raise Refused(502, f"the worker of {board_id} did not answer: {exc}") from None
        if kind == "application/json" and request.rel_url.path.endswith(
                (f"/{board_id}", f"/{board_id}/board")):
            return json_answer(self._public(json.loads(data)), status=status)
        return web.Response(body=data, status=status, content_type=kind)

    async def _stream(self, request: web.Request, worker: Worker,
                      url: str) -> web.StreamResponse:
        """A WebSocket event stream, passed on both ways until either side closes."""
        ws = stream_response(request)  # a browser's token protocol answered, never logged
        try:
            upstream = await self.session.ws_connect(url.replace("http", "ws", 1),
                                                     headers=worker.headers, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            # Refused by the worker (a bad parameter): the same request without the upgrade
            # gets the refusal's message.
            status, answer = await self._ask(worker, "GET", request.rel_url.path_qs)
            return json_answer(answer, status=exc.status if status == 200 else status)
        except aiohttp.ClientError as exc:
            raise Refused(502, f"a fleet worker did not answer: {exc}") from None
        await ws.prepare(request)
        self._sockets.add(ws)

        async def down() -> None:
            async for message in upstream:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                await ws.send_str(message.data)
            await ws.close()

        pump = asyncio.get_running_loop().create_task(down())
        try:
            async for message in ws:
                if message.type == aiohttp.WSMsgType.TEXT:
                    await upstream.send_str(message.data)
        finally:
            self._sockets.discard(ws)
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)
            await upstream.close()
        return ws


class ProxyThread:
    """The proxy, in a thread of its own with its own event loop."""

    def __init__(self, options: ControlOptions, entries: Sequence[dict[str, Any]],
                 workers: dict[int, Worker]) -> None:
        self.options = options
        self.entries = entries
        self.workers = workers
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="smpsim fleet control",
                                        daemon=True)

    def start(self) -> None:
        """Serve; raises what stopped it from starting (a :class:`ConfigError`)."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise ConfigError("the fleet's control plane did not start")
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        """Stop serving and wait for the thread."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and self._thread.is_alive():
            loop.call_soon_threadsafe(stop.set)
            self._thread.join(START_TIMEOUT_S)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = FleetProxy(self.options, self.entries, self.workers)
        try:
            await server.start()
        except BaseException as exc:
            self._error = exc
            self._started.set()
            return
        self._started.set()
        try:
            await self._stop.wait()
        finally:
            await server.close()
