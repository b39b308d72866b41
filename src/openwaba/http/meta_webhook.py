"""Meta's webhooks for channels on the Meta connector: `GET`/`POST /meta/webhook`.

Set this URL as the callback URL of the Meta app, with OPENWABA_META_VERIFY_TOKEN
as its verify token. Answers are plain text, as Meta's own examples give them.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from openwaba.domain.errors import AuthError
from openwaba.http.cloud import gateway


async def verify(request: Request) -> Response:
    """Meta's subscription check: echo `hub.challenge` when the verify token matches."""
    expected = gateway(request).settings.meta_verify_token
    query = request.query_params
    token = query.get("hub.verify_token", "")
    if expected and query.get("hub.mode") == "subscribe" and hmac.compare_digest(token.encode(), expected.encode()):
        return PlainTextResponse(query.get("hub.challenge", ""))
    if not expected:
        return PlainTextResponse("Set OPENWABA_META_VERIFY_TOKEN to subscribe this URL", 403)
    return PlainTextResponse("hub.mode must be 'subscribe' and hub.verify_token must match", 403)


async def receive(request: Request) -> Response:
    """Commit the post as received, then answer; it is ingested afterwards."""
    body = await request.body()
    try:
        await gateway(request).meta_inbox.receive(body, request.headers.get("x-hub-signature-256"))
    except AuthError as exc:
        return PlainTextResponse(exc.message, 401)
    return PlainTextResponse("EVENT_RECEIVED")


routes = [
    Route("/meta/webhook", verify, methods=["GET"]),
    Route("/meta/webhook", receive, methods=["POST"]),
]
