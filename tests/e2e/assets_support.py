"""Small, valid files for the media tests, built in memory, and a multipart encoder.

Nothing here touches the network or the disk: big files for the limit tests are
generated on demand (`padded_*`), a few MB at most.
"""

from __future__ import annotations

import base64
import secrets
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from .support import Reply, Server

# A 1x1 JPEG (arithmetic coded, the smallest layout there is): SOI, DQT, SOF9, DAC, SOS, EOI.
JPEG = bytes.fromhex(
    "ffd8"
    "ffdb004300"
    "03020202020203020202030303030406040404040408060605060908"
    "0a0a090809090a0c0f0c0a0b0e0b09090d110d0e0f101011100a0c12131210130f101010"
    "ffc9000b080001000101011100"
    "ffcc000600101005"
    "ffda0008010100003f00d2cf20"
    "ffd9"
)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int = 1, height: int = 1) -> bytes:
    """A valid RGB PNG of the given size (black pixels)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00\x00\x00" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows))
            + _png_chunk(b"IEND", b""))


PNG = png()

# A 1x1 lossless WebP (the image browsers use to detect WebP support).
WEBP = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")

PDF = (
    b"%PDF-1.1\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 3 3]>>endobj\n"
    b"trailer<</Root 1 0 R>>\n%%EOF\n"
)

TEXT = b"just some words, not an image\n"


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    return kind + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _riff(chunks: list[bytes]) -> bytes:
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def padded_webp(total: int) -> bytes:
    """A static 1x1 WebP of exactly `total` bytes (an unknown chunk pads it, as RIFF allows)."""
    image = WEBP[12:]  # the VP8L chunk
    padding = total - 12 - len(image) - 8
    assert padding >= 0 and padding % 2 == 0, "choose an even size >= 42"
    return _riff([image, _riff_chunk(b"PADX", b"\x00" * padding)])


def animated_webp(total: int) -> bytes:
    """An animated 1x1 WebP (VP8X with the animation flag, ANIM, one ANMF frame), padded to `total` bytes."""
    vp8x = _riff_chunk(b"VP8X", bytes([0x02, 0, 0, 0]) + (0).to_bytes(3, "little") + (0).to_bytes(3, "little"))
    anim = _riff_chunk(b"ANIM", b"\x00\x00\x00\x00" + struct.pack("<H", 0))
    frame = (0).to_bytes(3, "little") * 4 + (100).to_bytes(3, "little") + b"\x00"
    anmf = _riff_chunk(b"ANMF", frame + WEBP[12:])
    size = 12 + len(vp8x) + len(anim) + len(anmf)
    padding = total - size - 8
    assert padding >= 0 and padding % 2 == 0, "choose a larger, even size"
    return _riff([vp8x, anim, anmf, _riff_chunk(b"PADX", b"\x00" * padding)])


def padded(head: bytes, total: int) -> bytes:
    """`head` followed by zero bytes up to `total` bytes (what a size limit sees)."""
    return head + b"\x00" * (total - len(head))


# --- multipart/form-data ------------------------------------------------------------------


@dataclass(frozen=True)
class FilePart:
    content: bytes
    content_type: str | None = "application/octet-stream"
    filename: str = "file.bin"
    name: str = "file"


def multipart(fields: dict[str, str] | None = None, *files: FilePart) -> tuple[bytes, str]:
    """(body, Content-Type header) of a multipart/form-data request."""
    boundary = "e2e" + secrets.token_hex(12)
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
                     + value.encode() + b"\r\n")
    for part in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{part.name}"; filename="{part.filename}"\r\n'
        if part.content_type is not None:
            head += f"Content-Type: {part.content_type}\r\n"
        parts.append(head.encode() + b"\r\n" + part.content + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post_form(srv: Server, path: str, fields: dict[str, str] | None = None, *files: FilePart,
              key: str | None = "") -> Reply:
    body, content_type = multipart(fields, *files)
    return srv.call("POST", path, data=body, headers={"Content-Type": content_type}, key=key)


def upload(srv: Server, content: bytes, content_type: str, filename: str = "file.bin",
           key: str | None = "") -> Reply:
    """Cloud `POST /media`, the way 360dialog documents it."""
    return post_form(srv, "/media", {"messaging_product": "whatsapp"},
                     FilePart(content, content_type, filename), key=key)


def upload_id(srv: Server, content: bytes, content_type: str, filename: str = "file.bin",
              key: str | None = "") -> str:
    reply = upload(srv, content, content_type, filename, key=key)
    assert reply.status == 200, f"upload answered {reply.status}: {reply.body!r}"
    media_id = reply.json()["id"]
    assert isinstance(media_id, str) and media_id.isdigit(), reply.body
    return media_id


def assert_graph_error(reply: Reply, code: int, status: int | None = None) -> dict[str, Any]:
    """The Graph API error envelope, with the given WhatsApp code (and HTTP status)."""
    if status is None:
        assert 400 <= reply.status < 500, f"expected a 4xx, got {reply.status}: {reply.body!r}"
    else:
        assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body!r}"
    error: dict[str, Any] = reply.json()["error"]
    assert error["code"] == code, error
    assert error["type"] == "OAuthException", error
    assert error["message"].startswith(f"(#{code}) "), error
    assert error["error_data"]["messaging_product"] == "whatsapp", error
    assert isinstance(error["error_data"]["details"], str) and error["error_data"]["details"], error
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"], error
    return error


def assert_on_premise_error(reply: Reply, code: int, status: int) -> dict[str, Any]:
    """The On-Premise error envelope: `{"errors": [{code, title, details, href}], "meta": {...}}`."""
    assert reply.status == status, f"expected {status}, got {reply.status}: {reply.body!r}"
    body = reply.json()
    assert set(body) == {"errors", "meta"}, body
    [error] = body["errors"]
    assert error["code"] == code, error
    assert isinstance(error["title"], str) and error["title"], error
    assert isinstance(error["details"], str) and error["details"], error
    assert error["href"].startswith("https://"), error
    assert body["meta"]["version"], body
    return dict(error)
