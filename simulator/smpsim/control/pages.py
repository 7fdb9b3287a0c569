"""The dashboard: a live page of the board (``dashboard/``: plain HTML, CSS and JavaScript,
shipped as package data; no build step, nothing fetched from elsewhere), served at ``/`` of the
control API.

The page talks only to the API that serves it: the Content-Security-Policy keeps it to its own
scripts, styles and origin (the WebSocket included), and no other site may frame it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from importlib import resources

from aiohttp import web

FILES = {"/": ("index.html", "text/html"), "/app.js": ("app.js", "text/javascript"),
         "/style.css": ("style.css", "text/css")}
"""Path -> (file in ``dashboard/``, content type)."""
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": POLICY, "Cache-Control": "no-cache",
           "X-Content-Type-Options": "nosniff"}


def _file(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        # Read per request: a few kB, and an edited file shows at the next reload.
        body = (resources.files("smpsim.control") / "dashboard" / name).read_bytes()
        return web.Response(body=body, content_type=content_type, charset="utf-8",
                            headers=HEADERS)
    return serve


def routes() -> list[web.RouteDef]:
    """The dashboard's routes, for the control API's application."""
    return [web.get(path, _file(name, kind), allow_head=False)
            for path, (name, kind) in FILES.items()]
