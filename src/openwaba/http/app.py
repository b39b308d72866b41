"""`create_app(settings)`: the ASGI application."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.config import Settings
from openwaba.gateway import Gateway
from openwaba.http import (
    cloud,
    configs,
    console,
    deliveries,
    graph,
    media,
    meta_webhook,
    onpremise,
    partner,
    sandbox,
    scenarios,
    templates,
)
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
        routes=[
            *cloud.routes,
            *onpremise.routes,
            *templates.routes,
            *configs.routes,
            *sandbox.routes,
            *scenarios.routes,
            *partner.routes,
            *deliveries.routes,
            *meta_webhook.routes,
            *console.routes,
            *graph.routes,  # `/{version:graph_version}/...`: never a 360dialog path (`/v1/...` has no minor)
            Route("/openapi.json", _openapi, methods=["GET"]),
            *media.routes,  # last: it has the numeric catch-all `/{media_id}`
        ],
        lifespan=lifespan,
        exception_handlers={404: _not_found, 405: _not_allowed},
    )
    app.state.gateway = gw
    return app


async def _openapi(request: Request) -> Response:
    """The OpenAPI 3.1 document of every endpoint openwaba serves."""
    document = resources.files("openwaba").joinpath("openapi.json").read_bytes()
    return Response(document, media_type="application/json")


async def _not_found(request: Request, exc: Exception) -> Response:
    return graph.unserved(request) or flat_error(f"No endpoint {request.method} {request.url.path}", 404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return graph.unserved(request) or flat_error(f"Method {request.method} is not allowed on {request.url.path}", 405)
