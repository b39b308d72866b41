"""Sandbox scenarios over HTTP: `/sandbox/scenario` for the number,
`/sandbox/users/{wa_id}/scenario` for one simulated user (wins field by field)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.http.cloud import announces_config, gateway
from openwaba.http.responses import flat_face, json_body, json_response
from openwaba.http.sandbox import sandbox_channel


async def _user(request: Request) -> str | None:
    wa_id = request.path_params.get("wa_id")
    if wa_id is not None:
        await gateway(request).sandbox.user(await sandbox_channel(request), wa_id)
    return wa_id


@flat_face
async def show(request: Request) -> Response:
    channel, wa_id = await sandbox_channel(request), await _user(request)
    scenarios = gateway(request).scenarios
    body = {"scenario": (await scenarios.get(channel, wa_id)).view()}
    if wa_id is not None:
        body["effective"] = (await scenarios.effective(channel, wa_id)).view()
    return json_response(body)


@flat_face
async def replace(request: Request) -> Response:
    channel, wa_id = await sandbox_channel(request), await _user(request)
    scenario = await gateway(request).scenarios.set(channel, wa_id, await json_body(request))
    return json_response({"scenario": scenario.view()})


@flat_face
async def clear(request: Request) -> Response:
    channel, wa_id = await sandbox_channel(request), await _user(request)
    await gateway(request).scenarios.clear(channel, wa_id)
    return json_response({"scenario": {}})


@flat_face
async def script(request: Request) -> Response:
    """Where the user is in their script: `{steps, done, finished, mismatches}`."""
    channel, wa_id = await sandbox_channel(request), await _user(request)
    return json_response(await gateway(request).scenarios.script_progress(channel, str(wa_id)))


routes = [
    Route(path, handler, methods=[method])
    for path in ("/sandbox/scenario", "/sandbox/users/{wa_id}/scenario")
    for method, handler in (("GET", show), ("PUT", announces_config(replace)), ("DELETE", announces_config(clear)))
]
routes.append(Route("/sandbox/users/{wa_id}/script", script, methods=["GET"]))
