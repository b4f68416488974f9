"""The web dashboard: ``GET /`` (``web/index.html``) and its assets under ``/static/``.

No build step and nothing from elsewhere: the page, its script, its stylesheet and its icon
are files of the package, served from memory with their content types. Every response
carries a Content-Security-Policy that allows only this origin (``'self'``, plus ``ws://``
and ``wss://`` to the same host for the sockets).

Third-party browser libraries (the candle chart, Swagger UI for ``/docs``) are vendored,
pinned files under ``web/vendor/`` (``web/vendor/README.md`` lists them and how to update
them), served under ``/static/vendor/``. ``/docs`` is ``web/docs.html``: Swagger UI on
``/openapi.json``; its CSP also allows ``data:`` images (Swagger UI's icons are inline SVG).
"""

from __future__ import annotations

import re
from importlib import resources

from aiohttp import web

#: The files the dashboard may load, with their content types. Anything else is a 404.
ASSETS: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "book.js": "text/javascript; charset=utf-8",
    "bbo.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
    "docs.html": "text/html; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}

#: Vendored third-party files (``web/vendor/``), served under ``/static/vendor/``.
VENDOR: dict[str, str] = {
    "lightweight-charts.standalone.production.js": "text/javascript; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}

#: Pages served by a route of their own, not under ``/static/``.
_PAGES = frozenset({"index.html", "docs.html"})

#: A Host header we are willing to echo into the CSP (host, IPv4/IPv6 literal, port); used
#: with ``fullmatch`` (``$`` would accept a trailing newline; ``\d`` any Unicode digit).
_HOST = re.compile(r"[A-Za-z0-9.\-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")

_WEB: web.AppKey[dict[str, bytes]] = web.AppKey("web_assets")


def content_security_policy(host: str | None, *, img: str = "'self'") -> str:
    """Only 'self': scripts, styles, images, fetches; sockets to this same host."""
    sockets = f" ws://{host} wss://{host}" if host and _HOST.fullmatch(host) else ""
    return (
        f"default-src 'self'; script-src 'self'; style-src 'self'; img-src {img}; "
        f"connect-src 'self'{sockets}; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    )


def _headers(request: web.Request, content_type: str, img: str = "'self'") -> dict[str, str]:
    return {
        "Content-Type": content_type,
        "Content-Security-Policy": content_security_policy(request.host, img=img),
        "X-Content-Type-Options": "nosniff",
        # The page URL may carry ?api_key=: never send it anywhere as a Referer.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache",
    }


def _load() -> dict[str, bytes]:
    folder = resources.files("cryptowire") / "web"
    files = {name: (folder / name).read_bytes() for name in ASSETS}
    files.update({f"vendor/{name}": (folder / "vendor" / name).read_bytes() for name in VENDOR})
    return files


def _respond(request: web.Request, name: str, img: str = "'self'") -> web.Response:
    body = request.app[_WEB].get(name)
    if body is None:
        raise web.HTTPNotFound(text="Not found")
    ctype = ASSETS.get(name) or VENDOR[name.removeprefix("vendor/")]
    return web.Response(body=body, headers=_headers(request, ctype, img))


async def index(request: web.Request) -> web.Response:
    return _respond(request, "index.html")


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS or name in _PAGES:
        raise web.HTTPNotFound(text="Not found")
    return _respond(request, name)


async def vendor(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in VENDOR:
        raise web.HTTPNotFound(text="Not found")
    return _respond(request, f"vendor/{name}")


async def docs(request: web.Request) -> web.Response:
    """``/docs``: the interactive API reference (Swagger UI on ``/openapi.json``)."""
    return _respond(request, "docs.html", img="'self' data:")


async def favicon(request: web.Request) -> web.Response:
    return _respond(request, "favicon.svg")


def setup(app: web.Application) -> None:
    """Register ``/``, ``/static/{name}`` and ``/static/vendor/{name}`` (the files are read
    once, here). ``/docs`` is registered by ``ops`` with :func:`docs` as its handler."""
    app[_WEB] = _load()
    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", static)
    app.router.add_get("/static/vendor/{name}", vendor)
    app.router.add_get("/favicon.ico", favicon)
