"""`create_app(settings)`: the ASGI application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from openwaba.config import Settings
from openwaba.gateway import Gateway
from openwaba.http import cloud, configs, deliveries, partner, sandbox
from openwaba.http.responses import flat_error


def create_app(
    settings: Settings, gateway: Gateway | None = None, on_ready: Callable[[], None] | None = None
) -> Starlette:
    gw = gateway or Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        if on_ready is not None:
            on_ready()
        try:
            yield
        finally:
            await gw.stop()

    app = Starlette(
        routes=[*cloud.routes, *configs.routes, *sandbox.routes, *partner.routes, *deliveries.routes],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.gateway = gw
    return app


async def _not_found(request: Request, exc: Exception) -> Response:
    return flat_error(f"No endpoint {request.method} {request.url.path}", 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return flat_error(f"Method {request.method} is not allowed on {request.url.path}", 405)
