"""``/admin``: the web console's page and static files (gateway/admin/console/).

The page itself holds nothing secret and needs no credential: the admin signs in in the page
with a bearer token, which it sends to ``/admin/api`` on every call (no cookie, so no CSRF).
"""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

CONSOLE = Path(__file__).parent / "console"
#: The page may load only its own scripts and styles, and talk only to its own origin.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


async def console_page(request: Request) -> Response:
    return FileResponse(CONSOLE / "index.html", headers=SECURITY_HEADERS)


async def to_console(request: Request) -> Response:
    return RedirectResponse("/admin", status_code=308)


def console_routes() -> list[BaseRoute]:
    return [
        Route("/admin", console_page, methods=["GET"]),
        Route("/admin/", to_console, methods=["GET"]),
        Mount("/admin/static", StaticFiles(directory=CONSOLE, check_dir=False), name="admin-static"),
    ]
