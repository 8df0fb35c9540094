"""The web console: static files served by the gateway on its own port (8288 in dev).

The console is a small Preact + htm app (vendored under ``static/vendor``, no build step,
no CDN) that reads and acts only through the public REST API, like any script would.
``/`` answers the page; ``/static/...`` its modules. They hold no data, so they are served
without authentication: the page asks for a token when the API answers 401.
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ferryman_worker.gateway.auth import public

STATIC = Path(__file__).parent / "static"


async def index(request: Request) -> Response:
    # The page is tiny and names its modules; never cache it, so an upgrade shows at once.
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def routes() -> list[Route | Mount]:
    # Public (gateway/auth.py denies unmarked routes): the files hold no data.
    return [
        public(Route("/", index)),
        public(Mount("/static", StaticFiles(directory=STATIC), name="console-static")),
    ]
