"""A Python client for the 360dialog Messaging API: openwaba, 360dialog itself, or Meta's Cloud API.

    from openwaba.client import Client, messages

    with Client.openwaba("devkey", "http://127.0.0.1:8080") as client:
        sent = client.send(messages.text("15551230001", "Hello!"))
        print(sent.message_id)

`AsyncClient` has the same methods, awaitable. Only `httpx` is needed.
"""

from openwaba.client import messages
from openwaba.client.client import AsyncClient, Client
from openwaba.client.errors import (
    ApiError,
    AuthenticationError,
    ClientError,
    ConflictError,
    InvalidRequestError,
    MediaError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ReengagementError,
    ServerError,
    TemplateError,
    TransportError,
    UndeliverableError,
    UnsupportedError,
    error_class,
)
from openwaba.client.messages import Message, Row, Section
from openwaba.client.results import MediaInfo, Sent, Template
from openwaba.client.target import Target

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "Client",
    "ClientError",
    "ConflictError",
    "InvalidRequestError",
    "MediaError",
    "MediaInfo",
    "Message",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ReengagementError",
    "Row",
    "Section",
    "Sent",
    "ServerError",
    "Target",
    "Template",
    "TemplateError",
    "TransportError",
    "UndeliverableError",
    "UnsupportedError",
    "error_class",
    "messages",
]
