"""Which uploads WhatsApp accepts: types, sizes and recognisable content."""

from __future__ import annotations

import pytest

from openwaba.domain.errors import RequestError
from openwaba.domain.media import KB, MB, check_upload, clean_mime_type

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 56
PDF = b"%PDF-1.7\n" + b"\x00" * 55
WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8 " + b"\x00" * 48
WEBP_ANIMATED = b"RIFF\x00\x00\x00\x00WEBPVP8X" + b"\x00" * 10 + b"ANIM" + b"\x00" * 34


@pytest.mark.parametrize(
    ("mime", "size", "head", "kind"),
    [
        ("image/jpeg", 5 * MB, JPEG, "image"),
        ("image/png", 1000, PNG, "image"),
        ("audio/ogg", 16 * MB, b"OggS", "audio"),
        ("audio/mpeg", 10, b"ID3", "audio"),
        ("video/mp4", 16 * MB, b"\x00\x00\x00\x18ftypmp42", "video"),
        ("video/3gpp", 10, b"x", "video"),
        ("application/pdf", 100 * MB, PDF, "document"),
        ("text/plain", 10, b"hello", "document"),
        ("image/webp", 100 * KB, WEBP, "sticker"),
        ("image/webp", 500 * KB, WEBP_ANIMATED, "sticker"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_accepted(mime: str, size: int, head: bytes, kind: str) -> None:
    assert check_upload(mime, size, head).name == kind


@pytest.mark.parametrize(
    ("mime", "size", "head", "words"),
    [
        ("image/gif", 10, b"GIF89a", "Unsupported file type image/gif"),
        ("", 10, b"x", "Unsupported file type (none)"),
        ("image/jpeg", 5 * MB + 1, JPEG, "over the"),
        ("audio/ogg", 16 * MB + 1, b"OggS", "over the"),
        ("application/pdf", 100 * MB + 1, PDF, "over the"),
        ("image/webp", 100 * KB + 1, WEBP, "over the"),
        ("image/webp", 500 * KB + 1, WEBP_ANIMATED, "over the"),
        ("image/webp", 10, JPEG, "not a WebP"),
        ("image/jpeg", 10, b"hello, not a jpeg", "not image/jpeg"),
        ("image/png", 10, JPEG, "not image/png"),
        ("application/pdf", 10, b"hello", "not application/pdf"),
        ("image/jpeg", 0, b"", "empty"),
    ],
    ids=[
        "gif", "no-type", "image-too-big", "audio-too-big", "document-too-big", "static-sticker-too-big",
        "animated-sticker-too-big", "webp-content", "jpeg-content", "png-content", "pdf-content", "empty",
    ],
)
def test_refused_with_131053(mime: str, size: int, head: bytes, words: str) -> None:
    with pytest.raises(RequestError) as caught:
        check_upload(mime, size, head)
    assert caught.value.code == 131053
    assert words in caught.value.details


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Image/JPEG", "image/jpeg"),
        ("text/plain; charset=utf-8", "text/plain"),
        (None, ""),
        (" audio/ogg ", "audio/ogg"),
    ],
)
def test_clean_mime_type(raw: str | None, clean: str) -> None:
    assert clean_mime_type(raw) == clean
