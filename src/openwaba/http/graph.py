"""The Graph-compatible face: Meta's Cloud API paths under `/{version}` (`v21.0`, ...),
so code written for graph.facebook.com, and SDKs such as pywa, talk to openwaba by
changing only the base URL and the token (an openwaba API key, sent as
`Authorization: Bearer <key>`).

- `POST /{version}/{phone_number_id}/messages`: send, mark as read, typing indicator
- `POST /{version}/{phone_number_id}/media`: upload (multipart)
- `GET`/`DELETE /{version}/{media_id}`: media metadata (its `url` downloads with the
  same Bearer token) and deletion
- `GET /{version}/{waba_id}/message_templates`: the WABA's templates, Graph's paging

Each route checks the token, then that every number or WABA id the request names
(in the path, or as a `phone_number_id` query parameter) is the key's channel's,
and hands the request to the 360dialog Cloud face's handler, which already answers
in Graph's shapes. Errors are Graph's: a missing or unknown token is Meta's OAuth
error 190 (HTTP 401; the 360dialog faces answer a flat 401), and another number's
or WABA's id, like any path or method under a version that openwaba does not serve,
Meta's "Unsupported <method> request" (HTTP 400, code 100, subcode 33).
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from openwaba.domain.accounts import Channel
from openwaba.domain.templates import TOKEN
from openwaba.http import cloud, media, templates
from openwaba.http.cloud import API_KEY_HEADER, authenticate, bearer_token, channel_of, gateway, requested_fields
from openwaba.http.responses import (
    Endpoint,
    UnknownGraphObject,
    json_response,
    meta_graph_face,
    unsupported_request,
)


class GraphVersionConvertor(Convertor[str]):
    """`v21.0` and the like; 360dialog's `/v1/...` paths (no minor version) never match."""

    regex = r"v[0-9]+\.[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("graph_version", GraphVersionConvertor())

_GRAPH_PATH = re.compile(rf"/{GraphVersionConvertor.regex}/([^/]+)")

# What `summary` reports as the WABA's template limit: Meta's default for a WABA
# (openwaba itself does not enforce one).
TEMPLATE_LIMIT = 250

# The ids a Graph request may name, each compared with the key's channel's.
_OWNED_IDS = ("phone_number_id", "waba_id")


def _id_of(channel: Channel, name: str) -> str:
    return channel.phone_number_id if name == "phone_number_id" else channel.waba_id


def graph_route(endpoint: Endpoint) -> Endpoint:
    """`endpoint` behind Meta's checks: the token first, then the ids the request names."""

    @meta_graph_face
    async def checked(request: Request) -> Response:
        channel = await authenticate(request, _api_key(request))
        for name in _OWNED_IDS:
            for given in (request.path_params.get(name), request.query_params.get(name)):
                if given is not None and given != _id_of(channel, name):
                    raise UnknownGraphObject(given, request.method)
        return await endpoint(request)

    return checked


def _api_key(request: Request) -> str | None:
    """The Bearer token is this face's credential: with an `Authorization` header it
    alone counts (a malformed one is refused); without one, `D360-API-KEY` works too."""
    if "authorization" in request.headers:
        return bearer_token(request)
    return request.headers.get(API_KEY_HEADER)


async def message_templates(request: Request) -> Response:
    """The Cloud face's Meta-style listing plus what Graph adds: each template's
    `parameter_format`, `?fields=` (`id` always stays) and `?summary=`."""
    response = await templates.message_templates(request)
    if response.status_code != 200:
        return response
    page: dict[str, Any] = msgspec.json.decode(response.body)
    wanted = requested_fields(request)
    page["data"] = [_graph_template(item, wanted) for item in page["data"]]
    if "summary" in request.query_params:
        page["summary"] = await _summary(request)
    return json_response(page)


def _graph_template(item: dict[str, Any], wanted: set[str]) -> dict[str, Any]:
    item = {**item, "parameter_format": _parameter_format(item["components"])}
    return {k: v for k, v in item.items() if not wanted or k in wanted or k == "id"}


def _parameter_format(components: list[dict[str, Any]]) -> str:
    """NAMED when the header or body names its variables (`{{order_id}}`), else POSITIONAL."""
    texts = [str(c.get("text", "")) for c in components if c.get("type") in ("HEADER", "BODY")]
    named = any(not token.isdigit() for text in texts for token in TOKEN.findall(text))
    return "NAMED" if named else "POSITIONAL"


async def _summary(request: Request) -> dict[str, Any]:
    """Graph's `summary` of the WABA's templates (pywa's get_templates reads all four)."""
    count = len(await gateway(request).templates.list(await channel_of(request)))
    return {
        "total_count": count,
        "message_template_count": count,
        "message_template_limit": TEMPLATE_LIMIT,
        "are_translations_complete": True,
    }


def unserved(request: Request) -> Response | None:
    """For a Graph path or method openwaba does not serve (`/v21.0/{id}/block_users`),
    Meta's "does not support this operation" (100/33), which Graph clients raise as
    their own error; None for any other path."""
    match = _GRAPH_PATH.match(request.url.path)
    return unsupported_request(match.group(1), request.method) if match else None


_VERSION = "/{version:graph_version}"

routes = [
    Route(f"{_VERSION}/{{phone_number_id}}/messages", graph_route(cloud.send_message), methods=["POST"]),
    Route(f"{_VERSION}/{{phone_number_id}}/media", graph_route(media.upload), methods=["POST"]),
    Route(f"{_VERSION}/{{media_id:digits}}", graph_route(media.metadata), methods=["GET"]),
    Route(f"{_VERSION}/{{media_id:digits}}", graph_route(media.delete), methods=["DELETE"]),
    Route(f"{_VERSION}/{{waba_id}}/message_templates", graph_route(message_templates), methods=["GET"]),
]
