"""What the client's calls return, read tolerantly from the answers of every target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Sent:
    """An accepted message: its wamid (the id its status webhooks carry) and the recipient's wa_id."""

    message_id: str
    wa_id: str
    input: str
    message_status: str | None = None

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> Sent:
        # Cloud and On-Premise answers share `messages[0].id` and `contacts[0]`.
        message = body["messages"][0]
        contacts = body.get("contacts") or [{}]
        return cls(
            message_id=str(message["id"]),
            wa_id=str(contacts[0].get("wa_id", "")),
            input=str(contacts[0].get("input", "")),
            message_status=message.get("message_status"),
        )


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """Metadata of uploaded or received media; `url` downloads it for a few minutes."""

    id: str
    url: str
    mime_type: str
    sha256: str
    file_size: int

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> MediaInfo:
        return cls(
            id=str(body["id"]),
            url=str(body.get("url", "")),
            mime_type=str(body.get("mime_type", "")),
            sha256=str(body.get("sha256", "")),
            file_size=int(body.get("file_size") or 0),  # a string on some hosts, an integer on others
        )


@dataclass(frozen=True, slots=True)
class Template:
    """A message template of the number's WABA."""

    name: str
    language: str
    status: str
    category: str
    id: str = ""
    components: list[Any] = field(default_factory=list)
    raw: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, body: Mapping[str, Any]) -> Template:
        return cls(
            name=str(body.get("name", "")),
            language=str(body.get("language", "")),
            status=str(body.get("status", "")).lower(),  # 360dialog: "approved", Meta: "APPROVED"
            category=str(body.get("category", "")).lower(),
            id=str(body.get("id", "")),
            components=list(body.get("components") or []),
            raw=dict(body),
        )
