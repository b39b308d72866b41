"""Reading uploaded files: multipart forms and their file parts, in chunks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from openwaba.domain.errors import RequestError
from openwaba.domain.media import UPLOAD_LIMIT

CHUNK = 64 * 1024


@contextlib.asynccontextmanager
async def multipart_form(request: Request) -> AsyncIterator[FormData]:
    """The request's multipart form (one file at most), closed (temporary files
    removed) on exit; RequestError if the body is not one."""
    check_length(request)
    try:
        form = await request.form(max_files=1, max_fields=8)
    except Exception as exc:  # python-multipart's parse errors have no common base class
        raise RequestError(100, f"The body must be multipart/form-data with a 'file' part: {exc}") from None
    try:
        yield form
    finally:
        await form.close()


def file_part(form: FormData) -> UploadFile:
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise RequestError(131008, "Required form field 'file' is missing; send the file as a multipart file part")
    return file


def check_length(request: Request) -> None:
    """Refuse a body announced bigger than any file WhatsApp accepts, before reading it."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > UPLOAD_LIMIT + CHUNK:
        raise RequestError(131053, f"The file is over the {UPLOAD_LIMIT} bytes WhatsApp accepts")


async def chunks(file: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await file.read(CHUNK):
        yield chunk
