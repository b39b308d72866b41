"""Media on both faces.

Cloud (Graph errors): `POST /media` (multipart), `GET /{media_id}` (metadata
and a download URL), `DELETE /{media_id}`, and the download URL itself,
`/whatsapp_business/attachments/?mid&ext&hash` (GET, and POST as older
360dialog pages document; it takes the key as `D360-API-KEY` or, as Graph
clients send it, `Authorization: Bearer`). On-Premise: `POST /v1/media` (raw body),
`GET`/`DELETE /v1/media/{media_id}`.
"""

from __future__ import annotations

import mimetypes

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from openwaba.domain.errors import RequestError
from openwaba.domain.media import clean_mime_type
from openwaba.http.cloud import channel_of, gateway
from openwaba.http.responses import graph_face, json_response, on_premise_face, on_premise_response
from openwaba.http.uploads import check_length, chunks, file_part, multipart_form
from openwaba.storage.base import MediaFile


class DigitsConvertor(Convertor[str]):
    """Media ids are numeric; `/{media_id:digits}` leaves every other path alone."""

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("digits", DigitsConvertor())


@graph_face
async def upload(request: Request) -> Response:
    channel = await channel_of(request)
    async with multipart_form(request) as form:
        if form.get("messaging_product") != "whatsapp":
            raise RequestError(131008, "Required form field 'messaging_product' is missing; it must be 'whatsapp'")
        file = file_part(form)
        declared = form.get("type")
        mime_type = clean_mime_type(file.content_type)
        if (not mime_type or mime_type == "application/octet-stream") and isinstance(declared, str):
            mime_type = clean_mime_type(declared)
        media, _ = await gateway(request).media.upload(channel, mime_type, chunks(file), file.filename)
    return json_response({"id": media.id})


@graph_face
async def metadata(request: Request) -> Response:
    gw = gateway(request)
    media = await gw.media.get(await channel_of(request), request.path_params["media_id"])
    return json_response(
        {
            "messaging_product": "whatsapp",
            "url": gw.media.download_url(str(request.base_url), media),
            "mime_type": media.mime_type,
            "sha256": media.sha256,
            "file_size": media.file_size,
            "id": media.id,
        }
    )


@graph_face
async def delete(request: Request) -> Response:
    await gateway(request).media.delete(await channel_of(request), request.path_params["media_id"])
    return json_response({"success": True})


@graph_face
async def download(request: Request) -> Response:
    q = request.query_params
    gw = gateway(request)
    channel = await channel_of(request)
    media = await gw.media.by_download_url(channel, q.get("mid", ""), q.get("ext", ""), q.get("hash", ""))
    return _file(gw.media.path(media), media)


@on_premise_face
async def upload_raw(request: Request) -> Response:
    channel = await channel_of(request)
    check_length(request)
    mime_type = clean_mime_type(request.headers.get("content-type"))
    media, _ = await gateway(request).media.upload(channel, mime_type, request.stream())
    return on_premise_response({"media": [{"id": media.id}]}, 201)


@on_premise_face
async def download_raw(request: Request) -> Response:
    gw = gateway(request)
    media = await gw.media.get(await channel_of(request), request.path_params["media_id"])
    return _file(gw.media.path(media), media)


@on_premise_face
async def delete_raw(request: Request) -> Response:
    await gateway(request).media.delete(await channel_of(request), request.path_params["media_id"])
    return on_premise_response({})


def _file(path: object, media: MediaFile) -> Response:
    name = media.filename or f"{media.id}{mimetypes.guess_extension(media.mime_type) or ''}"
    return FileResponse(str(path), media_type=media.mime_type, filename=name)


# Registered after every other route: `/{media_id:digits}` is a catch-all for numbers.
routes = [
    Route("/media", upload, methods=["POST"]),
    Route("/whatsapp_business/attachments/", download, methods=["GET", "POST"]),
    Route("/v1/media", upload_raw, methods=["POST"]),
    Route("/v1/media/{media_id:digits}", download_raw, methods=["GET"]),
    Route("/v1/media/{media_id:digits}", delete_raw, methods=["DELETE"]),
    Route("/{media_id:digits}", metadata, methods=["GET"]),
    Route("/{media_id:digits}", delete, methods=["DELETE"]),
]
