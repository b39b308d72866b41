"""The request/answer pair the client's operations are written against.

Operations are generators: they yield a :class:`Request`, receive the
:class:`Reply` and return a result. They never touch the network themselves, so
the synchronous and the asynchronous client drive the very same code, and an
operation that needs two round trips (media download: metadata, then bytes; a
paged list) is still one function.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from openwaba.client.errors import error_from_response

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Upload:
    """A file part of a multipart form."""

    name: str
    filename: str
    content: bytes
    mime_type: str


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    url: str
    headers: Mapping[str, str]
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Mapping[str, str] | None = None  # multipart form fields, with `upload`
    upload: Upload | None = None
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        """The JSON body of a successful answer; raises the matching ApiError on an error status."""
        self.raise_for_status()
        return json.loads(self.content) if self.content else None

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise error_from_response(self.status, self.content)


Operation = Generator[Request, Reply, T]
