"""Media rules: which files WhatsApp accepts, and how big they may be.

A file's kind (image, audio, ...) follows from its MIME type; every kind has a
size limit, and a few formats are checked by their first bytes, as Meta's
media processor rejects a text file uploaded as `image/jpeg`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from openwaba.domain.errors import RequestError

KB = 1024
MB = 1024 * KB

# The largest upload accepted at all (documents); larger bodies are cut off early.
UPLOAD_LIMIT = 100 * MB
STICKER_STATIC_LIMIT = 100 * KB

_DOCUMENT_TYPES = (
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
)


@dataclass(frozen=True, slots=True)
class MediaKind:
    name: str  # the message type that carries it: image, audio, video, document, sticker
    limit: int  # bytes
    animated: bool = False  # an animated sticker (WebP with an ANIM chunk)


_KINDS: dict[str, MediaKind] = {
    **{t: MediaKind("audio", 16 * MB) for t in ("audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg")},
    **{t: MediaKind("document", 100 * MB) for t in _DOCUMENT_TYPES},
    **{t: MediaKind("image", 5 * MB) for t in ("image/jpeg", "image/png")},
    "image/webp": MediaKind("sticker", 500 * KB),
    **{t: MediaKind("video", 16 * MB) for t in ("video/mp4", "video/3gp", "video/3gpp")},
}

# Leading bytes of the formats that are cheap to recognise.
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "application/pdf": (b"%PDF",),
}

SUPPORTED_TYPES = tuple(sorted(_KINDS))


def clean_mime_type(raw: str | None) -> str:
    """`Image/JPEG; charset=x` -> `image/jpeg`."""
    return (raw or "").split(";", 1)[0].strip().lower()


def kind_of(mime_type: str) -> MediaKind:
    """The kind of a MIME type, or the upload error WhatsApp gives for it."""
    kind = _KINDS.get(mime_type)
    if kind is None:
        shown = mime_type or "(none)"
        raise RequestError(131053, f"Unsupported file type {shown}. Supported types: {', '.join(SUPPORTED_TYPES)}")
    return kind


def check_upload(mime_type: str, size: int, head: bytes) -> MediaKind:
    """Check a complete upload: its type is supported, its size within the kind's
    limit and, where the format is recognisable, its bytes are of that type."""
    kind = kind_of(mime_type)
    if size == 0:
        raise RequestError(131053, "The file is empty")
    if mime_type == "image/webp":
        if not (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
            raise RequestError(131053, "The file is not a WebP image, but was uploaded as image/webp")
        kind = dataclasses.replace(kind, animated=b"ANIM" in head)
    limit = kind.limit if kind.animated or mime_type != "image/webp" else STICKER_STATIC_LIMIT
    if size > limit:
        raise RequestError(131053, f"File of {size} bytes is over the {limit} bytes allowed for {mime_type}")
    magic = _MAGIC.get(mime_type)
    if magic and not head.startswith(magic):
        raise RequestError(131053, f"The file's content is not {mime_type}")
    return kind
