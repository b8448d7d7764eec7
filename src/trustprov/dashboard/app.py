"""The dashboard's web server: Starlette on uvicorn, read-only, GET only, guarded.

Invariants:

1. Read-only: the store is opened ``read_only`` (SQLite ``mode=ro``; PostgreSQL sessions in
   read-only transactions), and every method but GET and HEAD is refused (405) before any route.
2. An access token is required unless the server is bound to 127.0.0.1 or ::1 exactly (the
   default); any other address, another loopback address included, counts as "elsewhere": the
   rule is about the bind address the operator chose, not about who can route to it. The token
   comes from ``secrets.token_urlsafe`` (or the operator), is compared in constant time, and
   after the first visit (``/?token=...``) lives in an HttpOnly, SameSite=Strict cookie.
3. Without a token the Host header must name the loopback address: a web page elsewhere cannot
   read the dashboard through a DNS name rebound to 127.0.0.1.
4. Every response carries a CSP with no ``unsafe-inline`` (scripts and styles come from
   /static only), ``frame-ancestors 'none'``, ``nosniff``, ``no-referrer`` and ``no-store``.
5. One task reads the store (`LineView` is not shared between threads); every client is sent
   the same rendered fragment, so clients add no load on the store; `/metrics` and `/api/lots`
   render that task's latest snapshot, so scrapers add none either.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from trustprov.dashboard import metrics, render
from trustprov.dashboard.model import LineView, Snapshot
from trustprov.errors import InputError, TrustprovError
from trustprov.line.records import RecordStore

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8080"
LOOPBACK = frozenset({"127.0.0.1", "::1"})
COOKIE = "trustprov-dashboard"
TOKEN_MIN = 16
KEEPALIVE = 15.0  # seconds between SSE comments when nothing changed (proxies close idle streams)
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
]
STATIC = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``[IPV6]:PORT``."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise InputError(f"--listen {text!r} is not HOST:PORT (e.g. 127.0.0.1:8080)")
    return host, int(port)


def needs_token(host: str) -> bool:
    """Whether a server bound to ``host`` requires the access token (invariant 2)."""
    return host not in LOOPBACK


def access_token(host: str, given: str | None) -> tuple[str | None, bool]:
    """(the token to require or None, whether it was generated here)."""
    if given is not None:
        if len(given) < TOKEN_MIN:
            raise InputError(f"the access token must be at least {TOKEN_MIN} characters")
        return given, False
    if needs_token(host):
        return secrets.token_urlsafe(32), True
    return None, False


class Guard:
    """Method, Host and token checks, and the security headers (invariants 1 to 4)."""

    def __init__(self, app: App, token: str | None, hosts: frozenset[str] | None) -> None:
        self._app = app
        self._token = token.encode() if token is not None else None
        self._hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_guarded(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        request = Request(scope)
        refused = self._refusal(request)
        if refused is None and self._token is not None:
            supplied = parse_qs(scope.get("query_string", b"").decode()).get("token", [""])[0]
            if supplied and self._matches(supplied):
                # the token leaves the address bar (and the history) at once, for a cookie
                redirect = RedirectResponse(request.url.path, status_code=303)
                redirect.set_cookie(COOKIE, supplied, httponly=True, samesite="strict")
                await redirect(scope, receive, send_guarded)
                return
            if not self._matches(_bearer(request) or request.cookies.get(COOKIE, "")):
                refused = HTMLResponse(
                    "<!doctype html><title>token required</title><p>This dashboard needs its "
                    "access token: open the address printed when it started.</p>",
                    status_code=401,
                )
        if refused is not None:
            await refused(scope, receive, send_guarded)
            return
        await self._app(scope, receive, send_guarded)

    def _refusal(self, request: Request) -> Response | None:
        if request.method not in ("GET", "HEAD"):
            return Response("read-only: GET only\n", status_code=405, headers={"Allow": "GET"})
        if self._hosts is not None and request.headers.get("host", "") not in self._hosts:
            return Response("unexpected Host\n", status_code=421)
        return None

    def _matches(self, supplied: str) -> bool:
        assert self._token is not None  # noqa: S101 - only called with a token set
        return hmac.compare_digest(supplied.encode(), self._token)


def _bearer(request: Request) -> str:
    kind, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else ""


class Hub:
    """The latest rendered fragment, refreshed by one task; clients wait for a newer one."""

    def __init__(self, view: LineView, interval: float) -> None:
        self._view = view
        self._interval = interval
        self.page = ""
        self.fragment = ""
        self.snapshot: Snapshot | None = None
        self.version = 0
        self._changed = asyncio.Event()

    async def refresh(self) -> None:
        snap = await anyio.to_thread.run_sync(self._view.refresh)
        self.snapshot = snap
        self.page = render.dashboard_page(snap)
        fragment = render.live_fragment(snap)
        if fragment != self.fragment:
            self.fragment = fragment
            self.version += 1
            self._changed.set()
            self._changed = asyncio.Event()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.refresh()
            except TrustprovError as e:  # the store went away for a while: keep the last page
                log.warning("dashboard: cannot read the records: %s", e.diagnostics())

    async def newer(self, version: int) -> tuple[int, str] | None:
        """The fragment once it is newer than ``version``; None after KEEPALIVE seconds."""
        if self.version == version:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), KEEPALIVE)
            if self.version == version:
                return None
        return self.version, self.fragment


def create_app(
    view: LineView, *, token: str | None, hosts: frozenset[str] | None, interval: float
) -> App:
    hub = Hub(view, interval)

    async def index(_request: Request) -> Response:
        return HTMLResponse(hub.page)

    async def prometheus(_request: Request) -> Response:
        assert hub.snapshot is not None  # noqa: S101 - the lifespan refreshed before serving
        return Response(
            metrics.prometheus(hub.snapshot), headers={"content-type": metrics.CONTENT_TYPE}
        )

    async def lots(_request: Request) -> Response:
        assert hub.snapshot is not None  # noqa: S101 - the lifespan refreshed before serving
        return JSONResponse(metrics.lots_json(hub.snapshot))

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found\n", status_code=404)
        return Response(render.static(name), media_type=STATIC[name])

    async def events(_request: Request) -> Response:
        async def stream() -> AsyncIterator[str]:
            version = -1
            while True:
                got = await hub.newer(version)
                if got is None:
                    yield ": keepalive\n\n"
                    continue
                version, fragment = got
                data = "".join(f"data: {line}\n" for line in fragment.split("\n"))
                yield f"event: update\n{data}\n"

        return StreamingResponse(stream(), media_type="text/event-stream")

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await hub.refresh()  # the first page is whole before the first request is served
        task = asyncio.create_task(hub.run())
        try:
            yield
        finally:
            task.cancel()

    app = Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/events", events, methods=["GET"]),
            Route("/metrics", prometheus, methods=["GET"]),
            Route("/api/lots", lots, methods=["GET"]),
            Route("/static/{name}", static, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    return Guard(app, token, hosts)


def serve(
    records_url: str,
    listen: str,
    token: str | None,
    *,
    interval: float = 1.0,
    on_ready: Callable[[str], None],
    records_password: str | None = None,
) -> None:
    """Serve the dashboard of ``records_url`` until interrupted; ``on_ready`` gets the address."""
    host, port = parse_listen(listen)
    store = RecordStore(records_url, create=False, read_only=True, password=records_password)
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError as e:
            sock.close()
            raise InputError(f"cannot listen on {listen}: {e.strerror or e}") from e
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        hosts = None if token else frozenset({f"{shown}:{port}", f"localhost:{port}"})
        app = create_app(LineView(store), token=token, hosts=hosts, interval=interval)
        on_ready(f"http://{shown}:{port}/")
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, timeout_graceful_shutdown=1
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        store.close()
